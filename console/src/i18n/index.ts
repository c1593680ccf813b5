// Languages: Chinese (zh-CN) first, English complete. The choice comes from `?lng=` (as in the
// OHIF viewer), else from what this browser chose before (localStorage), else Chinese; it is
// remembered. Element Plus's own texts (pagination, dialogs) follow through its locale.

import { createI18n } from 'vue-i18n'
import elementZhCn from 'element-plus/es/locale/lang/zh-cn'
import elementEn from 'element-plus/es/locale/lang/en'
import type { Language as ElementLocale } from 'element-plus/es/locale'
import zhCN from './zh-CN'
import en from './en'

export const LANGUAGES = ['zh-CN', 'en'] as const
export type Language = (typeof LANGUAGES)[number]
export const DEFAULT_LANGUAGE: Language = 'zh-CN'
export const STORAGE_KEY = 'archive.console.language'

export const LANGUAGE_NAMES: Record<Language, string> = { 'zh-CN': '中文', en: 'English' }

export const ELEMENT_LOCALES: Record<Language, ElementLocale> = { 'zh-CN': elementZhCn, en: elementEn }

/** A language tag as people write it (zh, zh-cn, en-US …) → one of ours, or null. */
export function parseLanguage(tag: string | null | undefined): Language | null {
  const value = (tag ?? '').trim().toLowerCase()
  if (value === 'zh' || value.startsWith('zh-') || value.startsWith('zh_')) return 'zh-CN'
  if (value === 'en' || value.startsWith('en-') || value.startsWith('en_')) return 'en'
  return null
}

function stored(): string | null {
  try {
    return window.localStorage.getItem(STORAGE_KEY)
  } catch {
    return null // storage disabled: the default each time
  }
}

export function initialLanguage(search: string = window.location.search): Language {
  const asked = parseLanguage(new URLSearchParams(search).get('lng'))
  if (asked) {
    remember(asked)
    return asked
  }
  return parseLanguage(stored()) ?? DEFAULT_LANGUAGE
}

export function remember(language: Language): void {
  try {
    window.localStorage.setItem(STORAGE_KEY, language)
  } catch {
    // storage disabled: the choice lasts for this page only
  }
}

export function makeI18n(language: Language) {
  return createI18n({
    legacy: false,
    locale: language,
    fallbackLocale: DEFAULT_LANGUAGE,
    messages: { 'zh-CN': zhCN, en },
  })
}
