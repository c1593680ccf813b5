// The one place the console talks HTTP. Every failure becomes an ApiError carrying what the
// API said (RFC 9457 problem details: title, detail) or, when the API could not be reached or
// answered something that is not ours (a proxy's HTML error page), a reason the views translate.

import type { Health, Job, JobFilter, JobKind, JobPage, Problem, QuarantineDetail, QuarantineEntry,
  QuarantineFilter, QuarantineFix, QuarantinePage, ReingestResult } from './types'

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

/** fetch, then the JSON body; ``accept`` lists the statuses whose body is an answer. */
async function request<T>(path: string, init: RequestInit = {}, accept: number[] = []): Promise<T> {
  let response: Response
  try {
    response = await fetch(path, {
      ...init,
      headers: { Accept: 'application/json', ...(init.headers ?? {}) },
      credentials: 'same-origin',
    })
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
  if (body !== null && typeof body === 'object') {
    const problem = body as Problem
    throw new ApiError('problem', problem.title ?? `HTTP ${response.status}`, response.status, problem)
  }
  // 502/504 from the door while the API restarts, or anything else that is not our JSON.
  const kind: FailureKind = response.status >= 502 && response.status <= 504 ? 'unreachable' : 'unexpected'
  throw new ApiError(kind, `${path}: HTTP ${response.status}`, response.status)
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
  const health = await request<Health>('/api/health', {}, [503])
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
