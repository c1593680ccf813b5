// The one HTTP client against a fake fetch: the CSRF token from the sign-in goes with every
// request that changes something and with nothing else; 401 and "change your password first"
// reach the app's handler; a refusal keeps the API's problem.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ApiError, createUser, getMe, listUsers, login, logout, putGrants, setAuthProblemHandler, setCsrfToken,
  unlockUser } from '@/api/client'

interface Sent { url: string; method: string; headers: Record<string, string>; body: unknown }
let sent: Sent[] = []
let answers: Response[] = []

function answer(status: number, body: unknown, type = 'application/json'): Response {
  return new Response(body === null ? null : JSON.stringify(body), { status, headers: { 'Content-Type': type } })
}

beforeEach(() => {
  sent = []
  answers = []
  setCsrfToken(null)
  setAuthProblemHandler(null)
  vi.stubGlobal('fetch', vi.fn(async (url: string, init: RequestInit = {}) => {
    sent.push({ url, method: init.method ?? 'GET', headers: { ...(init.headers as Record<string, string>) },
      body: typeof init.body === 'string' ? JSON.parse(init.body) : null })
    const next = answers.shift()
    if (!next) throw new Error(`no answer for ${url}`)
    return next
  }))
})
afterEach(() => {
  vi.unstubAllGlobals()
})

const user = { id: 2, username: '王秀英', displayName: '王秀英', disabled: false, mustChangePassword: true,
  locked: false, lockedUntil: null, failedCount: 0, createdAt: '2026-12-04T01:00:00Z', lastLoginAt: null }

describe('CSRF', () => {
  it('sends the token of the sign-in on unsafe requests only', async () => {
    answers.push(answer(200, { user, csrfToken: 'tok-1', expiresAt: '2026-12-04T13:00:00Z', idleMinutes: 30,
      mustChangePassword: false }))
    await login('test-admin', 'secret')
    expect(sent[0].headers['X-CSRF-Token']).toBeUndefined() // the sign-in has no token yet

    answers.push(answer(200, [user]), answer(201, { ...user, grants: [], permissions: {} }),
      answer(200, [{ roleId: 'clinician', unitId: 2 }]), answer(200, { ...user, grants: [], permissions: {} }))
    await listUsers()
    await createUser({ username: '王秀英', displayName: '王秀英', password: 'Qing-Shan-Lu-2026',
      mustChangePassword: true })
    await putGrants(2, [{ roleId: 'clinician', unitId: 2 }])
    await unlockUser(2)
    expect(sent.slice(1).map((s) => [s.method, s.url, s.headers['X-CSRF-Token'] ?? null])).toEqual([
      ['GET', '/api/users', null],
      ['POST', '/api/users', 'tok-1'],
      ['PUT', '/api/users/2/grants', 'tok-1'],
      ['POST', '/api/users/2/unlock', 'tok-1'],
    ])
    expect(sent[2].body).toMatchObject({ username: '王秀英', mustChangePassword: true })
    expect(sent[3].body).toEqual([{ roleId: 'clinician', unitId: 2 }])
  })

  it('takes the token from /api/auth/me (a reload) and forgets it at logout', async () => {
    answers.push(answer(200, { kind: 'session', name: 'test-admin', user, permissions: { '*': ['admin'] },
      tenant: 'default', csrfToken: 'tok-2', session: 's1', mustChangePassword: false }))
    await getMe()
    answers.push(answer(204, null), answer(201, { ...user, grants: [], permissions: {} }))
    await logout()
    expect(sent[1]).toMatchObject({ method: 'POST', url: '/api/auth/logout' })
    expect(sent[1].headers['X-CSRF-Token']).toBe('tok-2')
    await createUser({ username: 'x', displayName: '', password: 'p', mustChangePassword: true })
    expect(sent[2].headers['X-CSRF-Token']).toBeUndefined()
  })
})

describe('refusals', () => {
  it('keeps the problem, and a wrong password at the sign-in is not "signed out"', async () => {
    const handler = vi.fn()
    setAuthProblemHandler(handler)
    answers.push(answer(401, { title: 'Unauthorized', status: 401, code: 'login-failed',
      detailZh: '用户名或密码错误', detailEn: 'wrong username or password' }, 'application/problem+json'))
    const error = await login('王秀英', 'wrong').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ApiError)
    expect((error as ApiError).status).toBe(401)
    expect((error as ApiError).problem?.detailZh).toBe('用户名或密码错误')
    expect(handler).not.toHaveBeenCalled()
  })

  it('hands a 401 of another request and "change your password first" to the handler', async () => {
    const handler = vi.fn()
    setAuthProblemHandler(handler)
    answers.push(answer(401, { title: 'Unauthorized', status: 401, code: 'unauthenticated' },
      'application/problem+json'))
    await expect(listUsers()).rejects.toBeInstanceOf(ApiError)
    answers.push(answer(403, { title: 'Forbidden', status: 403, code: 'password-change-required' },
      'application/problem+json'))
    await expect(listUsers()).rejects.toBeInstanceOf(ApiError)
    answers.push(answer(403, { title: 'Forbidden', status: 403, code: 'forbidden' }, 'application/problem+json'))
    await expect(listUsers()).rejects.toMatchObject({ status: 403, problem: { code: 'forbidden' } })
    expect(handler.mock.calls.map((c) => c[0])).toEqual(['signed-out', 'password-change'])
  })
})
