// Entry: the router under /ui/, the languages, the shared health report, then the layout.
// Any 401 from the API (session expired or revoked) leads to the login page, which comes back
// to the page the user was on; "change your password first" leads to the password page.
import { createApp } from 'vue'
import App from './App.vue'
import { makeRouter } from './router'
import { initialLanguage, makeI18n } from './i18n'
import { HEALTH, createHealthStore } from './health'
import { setAuthProblemHandler } from './api/client'
import { clearSession } from './session'
import './style.css'

const i18n = makeI18n(initialLanguage())
const router = makeRouter(import.meta.env.BASE_URL)
setAuthProblemHandler((problem) => {
  const current = router.currentRoute.value
  const next = router.resolve(current.fullPath).href
  if (problem === 'signed-out') {
    clearSession()
    if (current.name !== 'login') void router.push({ name: 'login', query: { next } })
  } else if (current.name !== 'password' && current.name !== 'login') {
    void router.push({ name: 'password', query: { next } })
  }
})
createApp(App)
  .use(router)
  .use(i18n)
  .provide(HEALTH, createHealthStore())
  .mount('#app')
