// One sentence for a failed action, for ElMessage: the problem's detail or title, else why.
// Problems of the security routes carry the detail in each language (detailZh, detailEn; the
// plain detail holds both): the console's language picks one. The API's `title` is always the
// HTTP status's English reason phrase (archive_api.errors.problem), so the console says it in
// its own language for the statuses it knows (`httpTitle` in the message files).
import type { Composer } from 'vue-i18n'
import { ApiError } from './api/client'
import type { Problem } from './api/types'

/** The statuses that have a title in the message files (`httpTitle.<status>`). */
export const TITLED_STATUSES = [400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 502, 503, 504] as const

export function problemDetail(problem: Problem | null | undefined, locale: string): string | undefined {
  if (!problem) return undefined
  const own = locale.startsWith('en') ? problem.detailEn : problem.detailZh
  return own || problem.detail
}

/** What kind of refusal it was, in the console's language ("没有权限" for a 403). */
export function problemTitle(error: ApiError, t: Composer['t']): string {
  const status = error.status
  if (status !== null && (TITLED_STATUSES as readonly number[]).includes(status)) return t(`httpTitle.${status}`)
  return error.problem?.title ?? t('common.httpStatus', { status })
}

export function reason(error: unknown, t: Composer['t'], locale = 'zh-CN'): string {
  if (error instanceof ApiError) {
    if (error.kind === 'problem') {
      const detail = problemDetail(error.problem, locale)
      return [problemTitle(error, t), detail].filter(Boolean).join(': ')
    }
    return error.kind === 'unreachable' ? t('common.unreachable') : t('common.unexpected')
  }
  return String(error)
}
