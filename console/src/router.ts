// Pages under /ui/ (history mode: the door answers index.html for every deep link).
// To add a page: a view in views/, a route here, a `nav` entry in App.vue and its title in
// both message files.
import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import ServicesView from './views/ServicesView.vue'
import JobsView from './views/JobsView.vue'
import JobDetailView from './views/JobDetailView.vue'
import QuarantineView from './views/QuarantineView.vue'
import QuarantineDetailView from './views/QuarantineDetailView.vue'

export const routes: RouteRecordRaw[] = [
  { path: '/', redirect: { name: 'services' } },
  { path: '/services', name: 'services', component: ServicesView, meta: { title: 'nav.services' } },
  { path: '/jobs', name: 'jobs', component: JobsView, meta: { title: 'nav.jobs' } },
  { path: '/jobs/:id', name: 'job', component: JobDetailView, props: true, meta: { title: 'nav.jobs' } },
  { path: '/quarantine', name: 'quarantine', component: QuarantineView, meta: { title: 'nav.quarantine' } },
  { path: '/quarantine/:id', name: 'quarantine-entry', component: QuarantineDetailView, props: true,
    meta: { title: 'nav.quarantine' } },
  { path: '/:unknown(.*)*', redirect: { name: 'services' } },
]

export function makeRouter(base: string) {
  return createRouter({ history: createWebHistory(base), routes })
}
