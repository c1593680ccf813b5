// One sentence for a failed action, for ElMessage: the problem's detail or title, else why.
import type { Composer } from 'vue-i18n'
import { ApiError } from './api/client'

export function reason(error: unknown, t: Composer['t']): string {
  if (error instanceof ApiError) {
    if (error.kind === 'problem') {
      const { title, detail } = error.problem ?? {}
      return [title, detail].filter(Boolean).join(': ') || t('common.httpStatus', { status: error.status })
    }
    return error.kind === 'unreachable' ? t('common.unreachable') : t('common.unexpected')
  }
  return String(error)
}
