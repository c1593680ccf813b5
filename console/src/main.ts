// Entry: the router under /ui/, the languages, the shared health report, then the layout.
import { createApp } from 'vue'
import App from './App.vue'
import { makeRouter } from './router'
import { initialLanguage, makeI18n } from './i18n'
import { HEALTH, createHealthStore } from './health'
import './style.css'

const i18n = makeI18n(initialLanguage())
createApp(App)
  .use(makeRouter(import.meta.env.BASE_URL))
  .use(i18n)
  .provide(HEALTH, createHealthStore())
  .mount('#app')
