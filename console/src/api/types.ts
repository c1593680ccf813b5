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
