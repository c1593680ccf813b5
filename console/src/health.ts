// The health report, shared by the layout (tenant, overall status) and the services page, so
// the page's 5-second refresh and the header show the same answer.
import { reactive, type InjectionKey } from 'vue'
import { ApiError, getHealth } from './api/client'
import type { Health } from './api/types'

export interface HealthStore {
  health: Health | null
  error: ApiError | null
  loadedAt: Date | null
  loading: boolean
  refresh(): Promise<void>
}

export const HEALTH: InjectionKey<HealthStore> = Symbol('health')

export function createHealthStore(fetchHealth: () => Promise<Health> = getHealth): HealthStore {
  const store: HealthStore = reactive({
    health: null,
    error: null,
    loadedAt: null,
    loading: false,
    async refresh() {
      if (store.loading) return // a slow answer: do not pile requests up
      store.loading = true
      try {
        store.health = await fetchHealth()
        store.error = null
      } catch (error) {
        store.error = error instanceof ApiError ? error : new ApiError('unexpected', String(error))
      } finally {
        store.loadedAt = new Date()
        store.loading = false
      }
    },
  })
  return store
}
