// The words a refusal is shown with: the kind of refusal in the console's language (the API's
// `title` is always the English HTTP phrase), the API's detail in that language.
import { describe, expect, it } from 'vitest'
import type { Composer } from 'vue-i18n'
import { ApiError } from '@/api/client'
import { problemTitle, reason, TITLED_STATUSES } from '@/errors'
import { makeI18n } from '@/i18n'
import zhCN from '@/i18n/zh-CN'
import en from '@/i18n/en'

/** The `t` of a view (useI18n) in ``language``. */
function translator(language: 'zh-CN' | 'en'): Composer['t'] {
  return makeI18n(language).global.t as unknown as Composer['t']
}

const loginFailed = new ApiError('problem', 'Unauthorized', 401, {
  type: 'about:blank', title: 'Unauthorized', status: 401, code: 'login-failed',
  detail: '用户名或密码错误 / wrong username or password',
  detailZh: '用户名或密码错误', detailEn: 'wrong username or password',
})

describe('problemTitle', () => {
  it('says the status in Chinese, not the HTTP phrase', () => {
    const t = translator('zh-CN')
    expect(problemTitle(loginFailed, t)).toBe('身份验证失败')
    expect(problemTitle(new ApiError('problem', 'Forbidden', 403, { title: 'Forbidden' }), t)).toBe('没有权限')
  })

  it('says the standard phrase in English', () => {
    const t = translator('en')
    expect(problemTitle(loginFailed, t)).toBe('Unauthorized')
    expect(problemTitle(new ApiError('problem', 'Not Found', 404, { title: 'Not Found' }), t)).toBe('Not Found')
  })

  it("keeps the API's title for a status it has no words for", () => {
    const t = translator('zh-CN')
    const teapot = new ApiError('problem', "I'm a Teapot", 418, { title: "I'm a Teapot" })
    expect(problemTitle(teapot, t)).toBe("I'm a Teapot")
    expect(problemTitle(new ApiError('problem', 'HTTP 418', 418, {}), t)).toBe('HTTP 418')
  })

  it('has words for every titled status in both languages', () => {
    for (const status of TITLED_STATUSES) {
      expect(zhCN.httpTitle[status], `zh-CN ${status}`).toMatch(/\S/)
      expect(en.httpTitle[status], `en ${status}`).toMatch(/\S/)
    }
  })
})

describe('reason', () => {
  it("joins the title and the API's detail in the console's language", () => {
    expect(reason(loginFailed, translator('zh-CN'), 'zh-CN')).toBe('身份验证失败: 用户名或密码错误')
    expect(reason(loginFailed, translator('en'), 'en')).toBe('Unauthorized: wrong username or password')
  })

  it('falls back to the plain detail where the API gives one language only', () => {
    const conflict = new ApiError('problem', 'Conflict', 409, { title: 'Conflict', detail: 'job 7 is running' })
    expect(reason(conflict, translator('zh-CN'), 'zh-CN')).toBe('与现有数据冲突: job 7 is running')
  })

  it('says why there was no answer of ours', () => {
    const t = translator('zh-CN')
    expect(reason(new ApiError('unreachable', 'TypeError: failed'), t)).toBe('无法连接归档的 API 服务。')
    expect(reason(new ApiError('unexpected', '/api/x: HTTP 500', 500), t)).toBe('服务器返回了无法识别的应答。')
  })
})
