// Pages under /ui/ (history mode: the door answers index.html for every deep link).
// To add a page: a view in views/, a route here (meta.permission: what the API needs for it),
// a `nav` entry in App.vue and its title in both message files.
//
// The guard: every page but the login page needs a signed-in user (GET /api/auth/me); a user
// who must change the password goes to the password page first; a page whose permission the
// user lacks on every tenant is not shown: App.vue puts a 403 notice in its place (the URL stays,
// so the user sees what was refused). A 401 from any later request also leads to the login
// page (main.ts), with `next` = the page the user was on.
import { createRouter, createWebHistory, type Router, type RouteRecordRaw } from 'vue-router'
import type { Permission } from './api/types'
import { ApiError } from './api/client'
import { loadSession, session } from './session'
import ServicesView from './views/ServicesView.vue'
import JobsView from './views/JobsView.vue'
import JobDetailView from './views/JobDetailView.vue'
import QuarantineView from './views/QuarantineView.vue'
import QuarantineDetailView from './views/QuarantineDetailView.vue'
import LoginView from './views/LoginView.vue'
import PasswordView from './views/PasswordView.vue'
import UsersView from './views/UsersView.vue'
import RolesView from './views/RolesView.vue'
import OrgUnitsView from './views/OrgUnitsView.vue'
import ApiKeysView from './views/ApiKeysView.vue'
import ModalitiesView from './views/ModalitiesView.vue'
import AuditView from './views/AuditView.vue'

declare module 'vue-router' {
  interface RouteMeta {
    /** Message key of the page's title. */
    title?: string
    /** The page needs one of these on some tenant (the API checks again). */
    permission?: Permission | Permission[]
    /** Shown to anybody, without the navigation (the login page). */
    public?: boolean
  }
}

export const routes: RouteRecordRaw[] = [
  { path: '/', redirect: { name: 'services' } },
  { path: '/login', name: 'login', component: LoginView, meta: { title: 'nav.login', public: true } },
  { path: '/password', name: 'password', component: PasswordView, meta: { title: 'nav.password' } },
  { path: '/services', name: 'services', component: ServicesView, meta: { title: 'nav.services' } },
  { path: '/jobs', name: 'jobs', component: JobsView, meta: { title: 'nav.jobs', permission: 'configure' } },
  { path: '/jobs/:id', name: 'job', component: JobDetailView, props: true,
    meta: { title: 'nav.jobs', permission: 'configure' } },
  { path: '/quarantine', name: 'quarantine', component: QuarantineView,
    meta: { title: 'nav.quarantine', permission: 'view' } },
  { path: '/quarantine/:id', name: 'quarantine-entry', component: QuarantineDetailView, props: true,
    meta: { title: 'nav.quarantine', permission: 'view' } },
  { path: '/users', name: 'users', component: UsersView, meta: { title: 'nav.users', permission: 'user-admin' } },
  { path: '/roles', name: 'roles', component: RolesView, meta: { title: 'nav.roles', permission: 'user-admin' } },
  { path: '/org-units', name: 'org-units', component: OrgUnitsView,
    meta: { title: 'nav.orgUnits', permission: 'user-admin' } },
  { path: '/api-keys', name: 'api-keys', component: ApiKeysView,
    meta: { title: 'nav.apiKeys', permission: 'user-admin' } },
  { path: '/modalities', name: 'modalities', component: ModalitiesView,
    meta: { title: 'nav.modalities', permission: 'configure' } },
  { path: '/audit', name: 'audit', component: AuditView, meta: { title: 'nav.audit', permission: 'audit-read' } },
  { path: '/:unknown(.*)*', redirect: { name: 'services' } },
]

export function makeRouter(base: string): Router {
  const router = createRouter({ history: createWebHistory(base), routes })
  router.beforeEach(async (to) => {
    if (to.meta.public) return true
    if (!session.loaded) {
      try {
        await loadSession()
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) {
          return { name: 'login', query: { next: router.resolve(to).href } }
        }
        return true // the API cannot be reached: the page says so itself
      }
    }
    if (session.me?.mustChangePassword && to.name !== 'password') {
      return { name: 'password', query: { next: router.resolve(to).href } }
    }
    return true
  })
  return router
}
