// What an audit row did, from its detail: user-admin rows name an operation, config-change rows
// an object and an operation.
import { describe, expect, it } from 'vitest'
import { auditOperationCode } from '@/labels'
import zhCN from '@/i18n/zh-CN'
import en from '@/i18n/en'

describe('auditOperationCode', () => {
  it('is the operation of a user-admin row', () => {
    expect(auditOperationCode({ operation: 'user-unlock', user_id: 2 })).toBe('user-unlock')
  })

  it('is object-operation for a config-change row', () => {
    expect(auditOperationCode({ object: 'modality', operation: 'create', before: null })).toBe('modality-create')
  })

  it('is null when the detail names no operation', () => {
    expect(auditOperationCode({})).toBeNull()
    expect(auditOperationCode(null)).toBeNull()
    expect(auditOperationCode({ operation: 3 })).toBeNull()
    expect(auditOperationCode({ via: 'login', reason: 'wrong-password' })).toBeNull()
  })

  it('has a name in both languages for what the API records', () => {
    // archive_api.admin_routes (record), auth_routes (password-change), modalities (audit)
    const codes = ['user-create', 'user-update', 'user-delete', 'user-unlock', 'password-reset', 'password-change',
      'grants-set', 'role-create', 'role-update', 'role-delete', 'org-unit-create', 'org-unit-update',
      'org-unit-delete', 'api-key-create', 'api-key-revoke', 'modality-create', 'modality-update', 'modality-delete']
    for (const code of codes) {
      expect(zhCN.auditOperation[code as keyof typeof zhCN.auditOperation], code).toMatch(/\S/)
      expect(en.auditOperation[code as keyof typeof en.auditOperation], code).toMatch(/\S/)
    }
  })
})
