// Who is signed in and what they may do, shared by the router guard, the header and the pages.
// Loaded once from GET /api/auth/me; cleared on logout and on any 401. Hiding what a user may
// not do is a courtesy only: the API checks every request itself.
import { reactive } from 'vue'
import { ApiError, getMe } from './api/client'
import type { Me, Permission } from './api/types'

export interface SessionState {
  me: Me | null
  /** /api/auth/me answered (signed in), or answered 404 (an archive without sign-in). */
  loaded: boolean
  /** false: the API has no sign-in (security switched off or older API): everything is shown. */
  available: boolean
}

export const session = reactive<SessionState>({ me: null, loaded: false, available: true })

/** Ask the API who we are. Throws the 401 (signed out) and failures to reach the API. */
export async function loadSession(): Promise<void> {
  try {
    session.me = await getMe()
    session.available = true
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      session.me = null
      session.available = false
    } else {
      throw error
    }
  }
  session.loaded = true
}

export function clearSession(): void {
  session.me = null
  session.loaded = false
  session.available = true
}

/** Every permission the principal holds on some tenant (`admin` implies the others). */
function held(me: Me): Set<string> {
  const all = new Set<string>()
  for (const list of Object.values(me.permissions ?? {})) for (const p of list) all.add(p)
  return all
}

/** May the principal use a page that needs one of ``needed`` on at least one tenant? */
export function allows(needed: Permission | readonly Permission[] | undefined): boolean {
  if (!needed || (Array.isArray(needed) && needed.length === 0)) return true
  if (!session.available || !session.me) return !session.available || !session.loaded
  const have = held(session.me)
  if (have.has('admin')) return true
  const list: readonly Permission[] = typeof needed === 'string' ? [needed] : needed
  return list.some((p) => have.has(p))
}

/** Does the principal hold ``permission`` on every tenant (a grant on the region, key `*`)? */
export function allowsEverywhere(permission: Permission): boolean {
  if (!session.available || !session.me) return !session.available || !session.loaded
  const everywhere = session.me.permissions?.['*'] ?? []
  return everywhere.includes(permission) || everywhere.includes('admin')
}

/** The name the header shows. */
export function displayName(me: Me | null): string {
  return me?.user?.displayName || me?.user?.username || me?.name || ''
}

const NEXT_ROOTS = ['/ui/', '/ohif/']
const CONTROL = /[\u0000-\u001f\u007f]/

/**
 * Where to go after signing in: ``next`` only when it is a path on this origin under /ui/ or
 * /ohif/ (never another site, never the login page itself); null otherwise (go home).
 */
export function safeNext(next: unknown, origin: string = window.location.origin): string | null {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.includes('\\')
      || CONTROL.test(next)) {
    return null
  }
  let url: URL
  try {
    url = new URL(next, origin)
  } catch {
    return null
  }
  if (url.origin !== new URL(origin).origin) return null
  const path = url.pathname
  if (!NEXT_ROOTS.some((root) => path.startsWith(root) || path === root.slice(0, -1))) return null
  if (path === '/ui/login' || path.startsWith('/ui/login/')) return null
  return path + url.search + url.hash
}
