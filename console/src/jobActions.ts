// Retry and cancel, as the jobs list and a job's page offer them: ask first, call the API,
// then say what happened (the API's problem title/detail when it refused).
import { useI18n } from 'vue-i18n'
import { ElMessage, ElMessageBox } from '@/element'
import { cancelJob, retryJob } from './api/client'
import type { Job, JobState } from './api/types'
import { reason } from './errors'

export type JobAction = 'retry' | 'cancel'

/** Which actions a job in this state can take (the API has the last word: 409 otherwise). */
export const ACTIONS: Record<JobAction, readonly JobState[]> = {
  retry: ['failed', 'cancelled'],
  cancel: ['queued', 'running'],
}

export function canDo(action: JobAction, job: Pick<Job, 'state'>): boolean {
  return ACTIONS[action].includes(job.state)
}

export function useJobActions(done: (job: Job | null) => void) {
  const { t, locale } = useI18n()

  async function run(action: JobAction, job: Pick<Job, 'id' | 'kind'>): Promise<void> {
    const names = { id: String(job.id), kind: job.kind }
    try {
      await ElMessageBox.confirm(
        t(action === 'retry' ? 'jobs.confirmRetry' : 'jobs.confirmCancel', names),
        t('jobs.confirmTitle'),
        { type: 'warning', confirmButtonText: t('jobs.confirmOk'), cancelButtonText: t('jobs.confirmNo') },
      )
    } catch {
      return // the user said no
    }
    try {
      const updated = await (action === 'retry' ? retryJob(job.id) : cancelJob(job.id))
      ElMessage({ type: 'success', message: t(action === 'retry' ? 'jobs.retried' : 'jobs.cancelled', names) })
      done(updated)
    } catch (error) {
      ElMessage({ type: 'error', message: t('jobs.failedAction', { reason: reason(error, t, locale.value) }), duration: 8000,
        showClose: true })
      done(null)
    }
  }

  return { run }
}
