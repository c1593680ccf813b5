// Names shown for the API's codes, in the console's language: permissions, roles, unit kinds.
import { useI18n } from 'vue-i18n'
import type { Role } from './api/types'

export function useLabels() {
  const { t, te, locale } = useI18n()
  const known = (prefix: string, code: string) => (te(`${prefix}.${code}`) ? t(`${prefix}.${code}`) : code)
  return {
    permission: (code: string) => known('permission', code),
    unitKind: (code: string) => known('unitKind', code),
    action: (code: string) => known('auditAction', code),
    outcome: (code: string) => known('auditOutcome', code),
    operation: (code: string) => known('modalityOperation', code),
    role: (role: Pick<Role, 'name' | 'nameEn'> | undefined, fallback = '') =>
      (role ? (locale.value.startsWith('en') && role.nameEn ? role.nameEn : role.name) : fallback),
  }
}
