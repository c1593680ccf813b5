// One sentence for a failed action, for ElMessage: the problem's detail or title, else why.
// Problems of the security routes carry the detail in each language (detailZh, detailEn; the
// plain detail holds both): the console's language picks one.
import type { Composer } from 'vue-i18n'
import { ApiError } from './api/client'
import type { Problem } from './api/types'

export function problemDetail(problem: Problem | null | undefined, locale: string): string | undefined {
  if (!problem) return undefined
  const own = locale.startsWith('en') ? problem.detailEn : problem.detailZh
  return own || problem.detail
}

export function reason(error: unknown, t: Composer['t'], locale = 'zh-CN'): string {
  if (error instanceof ApiError) {
    if (error.kind === 'problem') {
      const title = error.problem?.title
      const detail = problemDetail(error.problem, locale)
      return [title, detail].filter(Boolean).join(': ') || t('common.httpStatus', { status: error.status })
    }
    return error.kind === 'unreachable' ? t('common.unreachable') : t('common.unexpected')
  }
  return String(error)
}
