// Dates as people read them: in the browser's time zone, in the console's language
// (zh-CN: 2026/12/02 14:16:32; English: Dec 2, 2026, 14:16:32, a month name so that nobody
// has to guess the order of day and month). The API sends ISO 8601; a time without an offset
// is UTC.

const OFFSET = /(Z|[+-]\d{2}:?\d{2})$/i

export function parseInstant(value: string | null | undefined): Date | null {
  if (!value) return null
  const text = OFFSET.test(value) ? value : `${value}Z`
  const date = new Date(text)
  return Number.isNaN(date.getTime()) ? null : date
}

export function formatDateTime(value: string | null | undefined, locale: string): string {
  const date = parseInstant(value)
  if (!date) return value ?? ''
  return new Intl.DateTimeFormat(locale, {
    year: 'numeric', month: locale.startsWith('zh') ? '2-digit' : 'short', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
  }).format(date)
}

export function formatTime(date: Date, locale: string): string {
  return new Intl.DateTimeFormat(locale, {
    hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
  }).format(date)
}

/** A job's or service's free-form object, as readable text. */
export function formatJson(value: unknown): string {
  if (value === null || value === undefined) return ''
  if (typeof value === 'string') return value
  return JSON.stringify(value, null, 2)
}

/** done/total as a percentage for a progress bar; null when the total is unknown. */
export function percent(done: number | null | undefined, total: number | null | undefined): number | null {
  if (typeof total !== 'number' || total <= 0 || typeof done !== 'number') return null
  return Math.max(0, Math.min(100, Math.round((done / total) * 100)))
}
