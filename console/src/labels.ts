// Names shown for the API's codes, in the console's language: permissions, roles, unit kinds,
// audit actions and what an administration row did.
import { useI18n } from 'vue-i18n'
import type { Role } from './api/types'

/** ``operation`` of an audit row's detail, prefixed by its ``object`` when it names one
 * (config-change rows: ``modality-create``); null when the detail has no operation. */
export function auditOperationCode(detail: Record<string, unknown> | null | undefined): string | null {
  const operation = detail?.operation
  if (typeof operation !== 'string' || !operation) return null
  const object = detail?.object
  return typeof object === 'string' && object ? `${object}-${operation}` : operation
}

export function useLabels() {
  const { t, te, locale } = useI18n()
  const known = (prefix: string, code: string) => (te(`${prefix}.${code}`) ? t(`${prefix}.${code}`) : code)
  return {
    permission: (code: string) => known('permission', code),
    unitKind: (code: string) => known('unitKind', code),
    action: (code: string) => known('auditAction', code),
    outcome: (code: string) => known('auditOutcome', code),
    /** What a user-admin or config-change row did (its detail's ``operation``), '' if it says nothing. */
    auditOperation: (detail: Record<string, unknown> | null | undefined) => {
      const code = auditOperationCode(detail)
      return code ? known('auditOperation', code) : ''
    },
    operation: (code: string) => known('modalityOperation', code),
    role: (role: Pick<Role, 'name' | 'nameEn'> | undefined, fallback = '') =>
      (role ? (locale.value.startsWith('en') && role.nameEn ? role.nameEn : role.name) : fallback),
  }
}
