// Shapes of our HTTP API (docs/architecture.md, served as /api/openapi.json). JSON, camelCase.

export type ServiceStatus = 'ok' | 'degraded' | 'down'

export interface ServiceHealth {
  name: string
  status: ServiceStatus
  /** A sentence, or a small object of facts (a heartbeat's detail). */
  detail: string | Record<string, unknown> | null
  pid: number | null
  /** ISO 8601: when the process started, or when the status last changed. */
  since: string | null
  version: string | null
}

export interface Platform {
  name: string
  orthanc: string | null
  pythonPlugin: string | null
  dicomWeb: string | null
  gdcm: string | null
}

/** GET /api/health: 200 when every service is ok, 503 (same body) when degraded. */
export interface Health {
  status: 'ok' | 'degraded'
  version: string
  tenant: string
  platform: Platform
  services: ServiceHealth[]
  features: string[]
}

export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const
export type JobState = (typeof JOB_STATES)[number]

export interface JobProgress {
  done: number | null
  total: number | null
  message: string | null
}

export interface Job {
  id: string | number
  tenant: string
  kind: string
  state: JobState
  params: Record<string, unknown>
  attempts: number
  maxAttempts: number
  progress: JobProgress
  lastError: string | null
  result: Record<string, unknown> | null
  createdAt: string
  updatedAt: string
  startedAt: string | null
  finishedAt: string | null
  runAfter: string | null
  leaseOwner: string | null
}

export interface JobPage {
  items: Job[]
  total: number
  limit: number
  offset: number
}

/** GET /api/jobs/kinds: the kinds workers run, sorted by name. */
export interface JobKind {
  name: string
  description: string
}

export interface JobFilter {
  state?: JobState | ''
  kind?: string
  limit: number
  offset: number
}

/** RFC 9457 problem details: what /api answers on every error. */
export interface Problem {
  type?: string
  title?: string
  status?: number
  detail?: string
  instance?: string
  /** The security routes: the detail in one language each (``detail`` holds both). */
  detailZh?: string
  detailEn?: string
  /** The rule that was broken (``locked``, ``too-short``, ``csrf``, ``password-change-required`` …). */
  code?: string
  /** A locked account (code ``locked``): until when, ISO 8601. */
  lockedUntil?: string
  /** Validation problems: which field, and why (``messageZh`` where the API has one). */
  errors?: { field: string; message: string; messageZh?: string }[]
}

export const QUARANTINE_STATUSES = ['held', 'reingested', 'discarded'] as const
export type QuarantineStatus = (typeof QUARANTINE_STATUSES)[number]
export const TRANSPORTS = ['dimse', 'stow', 'rest', 'router', 'reingest', 'unknown'] as const
export type Transport = (typeof TRANSPORTS)[number]

/** Why the ingest gate refused an instance: a stable code, the tag concerned, a sentence. */
export interface QuarantineReason {
  code: string
  tag: string | null
  message: string
}

/** GET /api/quarantine items: one refused instance and what became of it. */
export interface QuarantineEntry {
  id: string
  tenant: string
  receivedAt: string
  transport: string
  remote: Record<string, string | null>
  reasons: QuarantineReason[]
  reasonCodes: string[]
  size: number
  sopClassUid: string | null
  sopInstanceUid: string | null
  studyInstanceUid: string | null
  seriesInstanceUid: string | null
  patientId: string | null
  patientName: string | null
  transferSyntax: string | null
  parent: string | null
  status: QuarantineStatus
  statusAt: string
  statusBy: string | null
  reingestedAs: string | null
  lastAttempt: Record<string, unknown> | null
  history: Record<string, unknown>[]
  filesMissing: boolean
  filesMissingAt: string | null
}

export interface QuarantineTag {
  tag: string
  keyword: string
  vr: string
  value: string
  error: string | null
}

export interface QuarantineDetail extends QuarantineEntry {
  tags: QuarantineTag[]
  tagsError: string | null
}

export interface QuarantinePage {
  items: QuarantineEntry[]
  total: number
  limit: number
  offset: number
  reasonCounts: Record<string, number>
}

export interface QuarantineFilter {
  status?: QuarantineStatus | ''
  reason?: string
  transport?: Transport | ''
  patient?: string
  /** ISO 8601 with an offset: received at or after / before. */
  since?: string
  until?: string
  limit: number
  offset: number
}

/** POST /api/quarantine/{id}/fix: tag → new value, or {vr, value} to set the VR too. */
export interface QuarantineFix {
  edits: Record<string, string | { vr: string; value: string }>
  remove: string[]
}

export interface ReingestResult {
  result: 'stored' | 'quarantined'
  orthancId: string | null
  orthancStatus: string | null
  newEntry: string | null
  reasons: QuarantineReason[]
  entry: QuarantineEntry
}

// ---- Security (issue 8): sign-in, users, roles, organisation units, API keys, modalities, audit.

/** The fixed permission strings; `admin` implies every other. */
export const PERMISSIONS = ['view', 'download', 'upload', 'delete', 'restore', 'purge', 'share', 'configure',
  'audit-read', 'user-admin', 'admin'] as const
export type Permission = (typeof PERMISSIONS)[number]

/** Tenant → permissions there (expanded); the key `*` means every tenant. */
export type PermissionsByTenant = Record<string, Permission[]>

/** A person who signs in. `locked`: failed sign-ins locked the account until `lockedUntil`. */
export interface User {
  id: number
  username: string
  displayName: string
  disabled: boolean
  mustChangePassword: boolean
  locked: boolean
  lockedUntil: string | null
  failedCount: number
  createdAt: string
  lastLoginAt: string | null
}

/** One grant: the role's permissions on the unit's tenant (on every tenant for the region). */
export interface Grant {
  roleId: string
  unitId: number
}

/** GET/PATCH /api/users/{id}, and the answer of every change to a user. */
export interface UserDetail extends User {
  grants: Grant[]
  permissions: PermissionsByTenant
}

/** POST /api/users. */
export interface UserCreate {
  username: string
  displayName: string
  password: string
  mustChangePassword: boolean
  grants?: Grant[]
}

/** PATCH /api/users/{id}: only the fields given change. */
export interface UserChange {
  displayName?: string
  disabled?: boolean
  mustChangePassword?: boolean
}

/** POST /api/users/{id}/password: an administrator sets a new password. */
export interface PasswordReset {
  password: string
  mustChangePassword: boolean
}

/** POST /api/auth/login {username, password}: 200 and the session cookie. */
export interface LoginResult {
  user: User
  csrfToken: string
  /** The session's absolute end. */
  expiresAt: string
  idleMinutes: number
  mustChangePassword: boolean
}

export type PrincipalKind = 'session' | 'token' | 'api-key' | 'anonymous'

/** GET /api/auth/me: who this browser is and what it may do, per tenant. */
export interface Me {
  /** `anonymous`: the archive runs with Archive.Security.Enabled false (everything allowed). */
  kind: PrincipalKind
  /** The username, or the API key's name. */
  name: string
  user: User | null
  permissions: PermissionsByTenant
  /** This archive's tenant. */
  tenant: string
  /** Sessions only: sent back as X-CSRF-Token on every unsafe request. */
  csrfToken: string | null
  /** The credential's public id. */
  session: string | null
  /** Every other route answers 403 (code password-change-required) until it is changed. */
  mustChangePassword: boolean
}

/** A role: built-in ones (seeded, `builtin`) cannot be changed or deleted. */
export interface Role {
  id: string
  name: string
  nameEn: string
  permissions: Permission[]
  builtin: boolean
}

/** POST /api/roles (id chosen by the administrator: lower-case letters, digits, '-'). */
export interface RoleCreate {
  id: string
  name: string
  nameEn: string
  permissions: Permission[]
}

export type RoleChange = Partial<Omit<RoleCreate, 'id'>>

export const UNIT_KINDS = ['region', 'hospital', 'campus', 'clinic', 'department'] as const
export type UnitKind = (typeof UNIT_KINDS)[number]

/** GET /api/org-units answers the tree as a flat list; the console nests it. */
export interface OrgUnit {
  id: number
  kind: UnitKind
  name: string
  nameEn: string | null
  parentId: number | null
  /** Set on this unit (hospitals): the archive that holds its images. */
  tenant: string | null
  /** The tenant grants on this unit apply to (its own or an ancestor's; `*`: every tenant). */
  scope: string | null
  createdAt: string
}

/** POST /api/org-units: the region exists from the first run (`create-admin`), never created here. */
export interface OrgUnitCreate {
  kind: Exclude<UnitKind, 'region'>
  name: string
  nameEn: string | null
  parentId: number
  tenant: string | null
}

export type OrgUnitChange = Partial<Pick<OrgUnitCreate, 'name' | 'nameEn' | 'tenant' | 'parentId'>>

/** An API key as listed: never its secret. `tenants` null: every tenant. */
export interface ApiKey {
  id: string
  name: string
  permissions: Permission[]
  tenants: string[] | null
  expiresAt: string | null
  createdBy: string
  createdAt: string
  revokedAt: string | null
}

export interface ApiKeyCreate {
  name: string
  permissions: Permission[]
  tenants: string[] | null
  expiresAt: string | null
}

/** POST /api/api-keys answer: the key itself (`ak_<keyid>_<secret>`), shown once, never again. */
export interface ApiKeyCreated extends ApiKey {
  key: string
}

export const MODALITY_OPERATIONS = ['echo', 'store', 'find', 'get', 'move'] as const
export type ModalityOperation = (typeof MODALITY_OPERATIONS)[number]
/** Orthanc's C-FIND patches for a peer ("Manufacturer" of a DicomModalities entry). */
export const MANUFACTURERS = ['Generic', 'GenericNoWildcardInDates', 'GenericNoUniversalWildcard', 'Vitrea',
  'GE'] as const
export type Manufacturer = (typeof MANUFACTURERS)[number]

/** What POST /api/modalities and PUT /api/modalities/{name} take. */
export interface ModalityFields {
  name: string
  aet: string
  host: string
  port: number
  allowedOperations: ModalityOperation[]
  useTls: boolean
  manufacturer: Manufacturer
  description: string
}

/** A DICOM modality (remote AE) the archive knows, keyed by its name. */
export interface Modality extends ModalityFields {
  createdAt: string
  createdBy: string | null
  updatedAt: string
  updatedBy: string | null
}

/** The answer of a change: the modality, and whether Orthanc has it already. */
export interface ModalityChange extends Modality {
  orthancSynced: boolean
}

export const AUDIT_ACTIONS = ['login', 'login-failed', 'lockout', 'logout', 'view', 'download', 'upload',
  'share', 'change', 'delete', 'restore', 'purge', 'config-change', 'user-admin',
  'access-denied', 'audit-read', 'dicom-echo', 'dicom-store', 'dicom-find', 'dicom-get',
  'dicom-move', 'dicom-refused'] as const
export type AuditAction = (typeof AUDIT_ACTIONS)[number]
export const AUDIT_OUTCOMES = ['success', 'failure', 'denied'] as const
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number]
export type ActorKind = 'user' | 'api-key' | 'dicom' | 'system' | 'anonymous'

export interface AuditEvent {
  id: number
  at: string
  action: AuditAction
  outcome: AuditOutcome
  actor: string
  actorKind: ActorKind
  sourceIp: string | null
  tenant: string | null
  /** An org unit id, as text. */
  unit: string | null
  patientId: string | null
  patientName: string | null
  studyUid: string | null
  resource: string | null
  session: string | null
  detail: Record<string, unknown>
  prevHash: string
  hash: string
}

export interface AuditPage {
  items: AuditEvent[]
  total: number
  limit: number
  offset: number
}

/** The query of GET /api/audit, /api/audit.csv and /api/audit/atna (from/to: ISO 8601 instants, to exclusive). */
export interface AuditFilter {
  from?: string
  to?: string
  operator?: string
  action?: AuditAction | ''
  patient?: string
  unit?: string
  tenant?: string
  outcome?: AuditOutcome | ''
  study?: string
  limit?: number
  offset?: number
}

/** GET /api/audit/verify: the hash chain walked; `firstBadId` names the first row that does not match. */
export interface AuditVerification {
  ok: boolean
  checked: number
  headId: number
  headHash: string
  firstBadId: number | null
  /** A code for what is wrong (e.g. hash mismatch, broken link). */
  problem: string | null
  /** A sentence for people. */
  message: string | null
}
