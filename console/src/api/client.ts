// The one place the console talks HTTP. Every failure becomes an ApiError carrying what the
// API said (RFC 9457 problem details: title, detail) or, when the API could not be reached or
// answered something that is not ours (a proxy's HTML error page), a reason the views translate.
//
// Signing in: the session is an HttpOnly cookie the browser sends by itself; the CSRF token that
// comes with it (from login and from /api/auth/me) is kept here, in memory only, and sent as
// X-CSRF-Token on every unsafe request. A 401 from any request but the sign-in itself, and a 403
// saying the password must be changed first, call the handler the app installs (it goes to the
// login page, or to the password page).

import type { ApiKey, ApiKeyCreate, ApiKeyCreated, AuditFilter, AuditPage, AuditVerification, Grant, Health,
  Job, JobFilter, JobKind, JobPage, LoginResult, Me, Modality, ModalityChange, ModalityFields, OrgUnit,
  OrgUnitChange, OrgUnitCreate, PasswordReset, Problem, QuarantineDetail, QuarantineEntry, QuarantineFilter,
  QuarantineFix, QuarantinePage, ReingestResult, Role, RoleChange, RoleCreate, User, UserChange, UserCreate,
  UserDetail } from './types'

export type FailureKind = 'unreachable' | 'problem' | 'unexpected'

export class ApiError extends Error {
  readonly kind: FailureKind
  readonly status: number | null
  readonly problem: Problem | null

  constructor(kind: FailureKind, message: string, status: number | null = null,
              problem: Problem | null = null) {
    super(message)
    this.name = 'ApiError'
    this.kind = kind
    this.status = status
    this.problem = problem
  }
}

const JSON_TYPES = ['application/json', 'application/problem+json']

function isJson(response: Response): boolean {
  const type = (response.headers.get('Content-Type') ?? '').split(';')[0].trim().toLowerCase()
  return JSON_TYPES.includes(type)
}

const UNSAFE = ['POST', 'PUT', 'PATCH', 'DELETE']
let csrfToken: string | null = null
/** `signed-out`: a 401; `password-change`: a 403 whose code is password-change-required. */
export type AuthProblem = 'signed-out' | 'password-change'
let onAuthProblem: ((problem: AuthProblem, error: ApiError) => void) | null = null

/** The session's CSRF token (null: none, e.g. after logout). */
export function setCsrfToken(token: string | null): void {
  csrfToken = token
}

/** Called on every 401 (except where a 401 is the answer itself) and on "change your password first". */
export function setAuthProblemHandler(handler: ((problem: AuthProblem, error: ApiError) => void) | null): void {
  onAuthProblem = handler
}

interface Options {
  /** Statuses whose body is an answer, not an error. */
  accept?: number[]
  /** A 401 here is the answer itself (wrong password), not "signed out". */
  quiet401?: boolean
}

/** fetch, then the JSON body (null for 204). */
async function request<T>(path: string, init: RequestInit = {}, options: Options = {}): Promise<T> {
  const accept = options.accept ?? []
  const method = (init.method ?? 'GET').toUpperCase()
  const headers: Record<string, string> = { Accept: 'application/json',
    ...((init.headers as Record<string, string> | undefined) ?? {}) }
  if (UNSAFE.includes(method) && csrfToken) headers['X-CSRF-Token'] = csrfToken
  let response: Response
  try {
    response = await fetch(path, { ...init, headers, credentials: 'same-origin' })
  } catch (error) {
    throw new ApiError('unreachable', String(error))
  }
  const body: unknown = isJson(response) ? await response.json().catch(() => null) : null
  if (response.ok || accept.includes(response.status)) {
    if (body === null && response.status !== 204) {
      throw new ApiError('unexpected', `${path}: not JSON`, response.status)
    }
    return body as T
  }
  let error: ApiError
  if (body !== null && typeof body === 'object') {
    const problem = body as Problem
    error = new ApiError('problem', problem.title ?? `HTTP ${response.status}`, response.status, problem)
  } else {
    // 502/504 from the door while the API restarts, or anything else that is not our JSON.
    const kind: FailureKind = response.status >= 502 && response.status <= 504 ? 'unreachable' : 'unexpected'
    error = new ApiError(kind, `${path}: HTTP ${response.status}`, response.status)
  }
  if (onAuthProblem && response.status === 401 && !options.quiet401) onAuthProblem('signed-out', error)
  if (onAuthProblem && response.status === 403 && error.problem?.code === 'password-change-required') {
    onAuthProblem('password-change', error)
  }
  throw error
}

function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== '') search.set(key, String(value))
  }
  const text = search.toString()
  return text ? `?${text}` : ''
}

export async function getHealth(): Promise<Health> {
  // 503 means "degraded" and still carries the whole report.
  const health = await request<Health>('/api/health', {}, { accept: [503] })
  if (!health || !Array.isArray(health.services) || typeof health.status !== 'string') {
    throw new ApiError('unexpected', '/api/health: not a health report')
  }
  return health
}

export function listJobs(filter: JobFilter): Promise<JobPage> {
  return request<JobPage>('/api/jobs' + query({
    state: filter.state, kind: filter.kind, limit: filter.limit, offset: filter.offset,
  }))
}

export function getJob(id: string): Promise<Job> {
  return request<Job>(`/api/jobs/${encodeURIComponent(id)}`)
}

export function retryJob(id: string | number): Promise<Job> {
  return request<Job>(`/api/jobs/${encodeURIComponent(String(id))}/retry`, { method: 'POST' })
}

export function cancelJob(id: string | number): Promise<Job> {
  return request<Job>(`/api/jobs/${encodeURIComponent(String(id))}/cancel`, { method: 'POST' })
}

export function listJobKinds(): Promise<JobKind[]> {
  return request<JobKind[]>('/api/jobs/kinds')
}

export function listQuarantine(filter: QuarantineFilter): Promise<QuarantinePage> {
  return request<QuarantinePage>('/api/quarantine' + query({
    status: filter.status, reason: filter.reason, transport: filter.transport,
    patient: filter.patient, since: filter.since, until: filter.until, limit: filter.limit,
    offset: filter.offset,
  }))
}

const entryPath = (id: string) => `/api/quarantine/${encodeURIComponent(id)}`

export function getQuarantineEntry(id: string): Promise<QuarantineDetail> {
  return request<QuarantineDetail>(entryPath(id))
}

/** Where the browser downloads the bytes as received (Content-Disposition: attachment). */
export function quarantineFileUrl(id: string): string {
  return `${entryPath(id)}/file`
}

export function reingestQuarantineEntry(id: string): Promise<ReingestResult> {
  return request<ReingestResult>(`${entryPath(id)}/reingest`, { method: 'POST' })
}

export function fixQuarantineEntry(id: string, fix: QuarantineFix): Promise<ReingestResult> {
  return request<ReingestResult>(`${entryPath(id)}/fix`, {
    method: 'POST', body: JSON.stringify(fix), headers: { 'Content-Type': 'application/json' },
  })
}

export function discardQuarantineEntry(id: string): Promise<QuarantineEntry> {
  return request<QuarantineEntry>(entryPath(id), { method: 'DELETE' })
}

function json(method: string, body: unknown): RequestInit {
  return { method, body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }
}
const id = (value: string | number) => encodeURIComponent(String(value))

// ---- Signing in

export async function login(username: string, password: string): Promise<LoginResult> {
  const result = await request<LoginResult>('/api/auth/login', json('POST', { username, password }),
    { quiet401: true })
  setCsrfToken(result.csrfToken)
  return result
}

export async function logout(): Promise<void> {
  try {
    await request<null>('/api/auth/logout', { method: 'POST' }, { quiet401: true })
  } finally {
    setCsrfToken(null)
  }
}

/** Who this browser is; a 401 (signed out) is thrown to the caller, not handed to the handler. */
export async function getMe(): Promise<Me> {
  const me = await request<Me>('/api/auth/me', {}, { quiet401: true })
  setCsrfToken(me.csrfToken ?? null)
  return me
}

/** A wrong old password is a 401 here: the answer, not "signed out". */
export function changeOwnPassword(old: string, next: string): Promise<null> {
  return request<null>('/api/auth/password', json('POST', { old, new: next }), { quiet401: true })
}

// ---- Users and their grants

/** Every user the caller administers (the whole list: a region has hundreds, not millions). */
export function listUsers(): Promise<User[]> {
  return request<User[]>('/api/users')
}

export function createUser(user: UserCreate): Promise<UserDetail> {
  return request<UserDetail>('/api/users', json('POST', user))
}

export function changeUser(userId: string | number, change: UserChange): Promise<UserDetail> {
  return request<UserDetail>(`/api/users/${id(userId)}`, json('PATCH', change))
}

export function unlockUser(userId: string | number): Promise<UserDetail> {
  return request<UserDetail>(`/api/users/${id(userId)}/unlock`, { method: 'POST' })
}

export function resetPassword(userId: string | number, reset: PasswordReset): Promise<UserDetail> {
  return request<UserDetail>(`/api/users/${id(userId)}/password`, json('POST', reset))
}

export function getGrants(userId: string | number): Promise<Grant[]> {
  return request<Grant[]>(`/api/users/${id(userId)}/grants`)
}

export function putGrants(userId: string | number, grants: Grant[]): Promise<Grant[]> {
  return request<Grant[]>(`/api/users/${id(userId)}/grants`, json('PUT', grants))
}

// ---- Roles

export function listRoles(): Promise<Role[]> {
  return request<Role[]>('/api/roles')
}

export function createRole(role: RoleCreate): Promise<Role> {
  return request<Role>('/api/roles', json('POST', role))
}

export function changeRole(roleId: string, change: RoleChange): Promise<Role> {
  return request<Role>(`/api/roles/${id(roleId)}`, json('PATCH', change))
}

export function deleteRole(roleId: string): Promise<null> {
  return request<null>(`/api/roles/${id(roleId)}`, { method: 'DELETE' })
}

// ---- Organisation units

export function listOrgUnits(): Promise<OrgUnit[]> {
  return request<OrgUnit[]>('/api/org-units')
}

export function createOrgUnit(unit: OrgUnitCreate): Promise<OrgUnit> {
  return request<OrgUnit>('/api/org-units', json('POST', unit))
}

export function changeOrgUnit(unitId: string | number, change: OrgUnitChange): Promise<OrgUnit> {
  return request<OrgUnit>(`/api/org-units/${id(unitId)}`, json('PATCH', change))
}

export function deleteOrgUnit(unitId: string | number): Promise<null> {
  return request<null>(`/api/org-units/${id(unitId)}`, { method: 'DELETE' })
}

// ---- API keys

export function listApiKeys(): Promise<ApiKey[]> {
  return request<ApiKey[]>('/api/api-keys')
}

export function createApiKey(key: ApiKeyCreate): Promise<ApiKeyCreated> {
  return request<ApiKeyCreated>('/api/api-keys', json('POST', key))
}

export function revokeApiKey(keyId: string): Promise<ApiKey> {
  return request<ApiKey>(`/api/api-keys/${id(keyId)}`, { method: 'DELETE' })
}

// ---- DICOM modalities

export function listModalities(): Promise<Modality[]> {
  return request<Modality[]>('/api/modalities')
}

export function createModality(modality: ModalityFields): Promise<ModalityChange> {
  return request<ModalityChange>('/api/modalities', json('POST', modality))
}

export function putModality(modality: ModalityFields): Promise<ModalityChange> {
  return request<ModalityChange>(`/api/modalities/${id(modality.name)}`, json('PUT', modality))
}

export function deleteModality(name: string): Promise<ModalityChange> {
  return request<ModalityChange>(`/api/modalities/${id(name)}`, { method: 'DELETE' })
}

// ---- Audit

function auditQuery(filter: AuditFilter): string {
  return query({ from: filter.from, to: filter.to, operator: filter.operator, action: filter.action,
    patient: filter.patient, unit: filter.unit, tenant: filter.tenant, outcome: filter.outcome,
    study: filter.study, limit: filter.limit, offset: filter.offset })
}

export function searchAudit(filter: AuditFilter): Promise<AuditPage> {
  return request<AuditPage>('/api/audit' + auditQuery(filter))
}

/** Where the browser downloads the same events as CSV, or as ATNA XML (the filter without paging). */
export function auditExportUrl(format: 'csv' | 'atna', filter: AuditFilter): string {
  const unpaged = { ...filter, limit: undefined, offset: undefined }
  return (format === 'csv' ? '/api/audit.csv' : '/api/audit/atna') + auditQuery(unpaged)
}

export function verifyAudit(): Promise<AuditVerification> {
  return request<AuditVerification>('/api/audit/verify')
}
