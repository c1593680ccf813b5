// The admin pages' way of changing things: ask first when it matters, call the API, then say
// what happened (the API's problem title/detail when it refused).
import { useI18n } from 'vue-i18n'
import { ElMessage, ElMessageBox } from '@/element'
import { reason } from './errors'

export function useActions() {
  const { t, locale } = useI18n()

  /** true when the user confirmed ``message``. */
  async function confirm(message: string, danger = false): Promise<boolean> {
    try {
      await ElMessageBox.confirm(message, t('admin.confirmTitle'), {
        type: 'warning', confirmButtonText: t('admin.confirmOk'), cancelButtonText: t('admin.confirmNo'),
        confirmButtonClass: danger ? 'el-button--danger' : undefined,
      })
      return true
    } catch {
      return false
    }
  }

  /** Run ``call``; on success show ``success`` (if any), on failure the reason. Undefined on failure. */
  async function attempt<T>(call: () => Promise<T>, success?: string): Promise<T | undefined> {
    try {
      const result = await call()
      if (success) ElMessage({ type: 'success', message: success })
      return result
    } catch (error) {
      ElMessage({ type: 'error', message: t('admin.failed', { reason: reason(error, t, locale.value) }), duration: 8000,
        showClose: true })
      return undefined
    }
  }

  return { confirm, attempt }
}
