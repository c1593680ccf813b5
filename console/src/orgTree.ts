// The organisation tree as the API lists it (flat, each unit naming its parent), nested for
// the pages: region → hospital → campus/clinic → department. A unit's tenant is its own or its
// nearest ancestor's (the hospital's).
import type { OrgUnit, UnitKind } from './api/types'

export interface UnitNode extends OrgUnit {
  children: UnitNode[]
  depth: number
  /** The tenant that applies: the API's `scope` (`*` on the region), else the unit's own or its
   * nearest ancestor's. */
  effectiveTenant: string | null
  /** Names from the root down to this unit, in the given language. */
  path: string[]
}

/** Which kinds of unit may sit under a unit of each kind (the API has the last word). */
export const CHILD_KINDS: Record<UnitKind, UnitKind[]> = {
  region: ['hospital'],
  hospital: ['campus', 'clinic', 'department'],
  campus: ['clinic', 'department'],
  clinic: ['department'],
  department: [],
}

export function unitName(unit: Pick<OrgUnit, 'name' | 'nameEn'>, locale: string): string {
  return locale.startsWith('en') && unit.nameEn ? unit.nameEn : unit.name
}

const key = (value: string | number | null) => (value === null ? '' : String(value))

/** The roots (units whose parent is missing) with their descendants, siblings by name. */
export function buildTree(units: OrgUnit[], locale: string): UnitNode[] {
  const byParent = new Map<string, OrgUnit[]>()
  const ids = new Set(units.map((u) => key(u.id)))
  for (const unit of units) {
    const parent = unit.parentId !== null && ids.has(key(unit.parentId)) ? key(unit.parentId) : ''
    byParent.set(parent, [...(byParent.get(parent) ?? []), unit])
  }
  const seen = new Set<string>()
  function grow(parent: string, depth: number, tenant: string | null, path: string[]): UnitNode[] {
    return (byParent.get(parent) ?? [])
      .filter((unit) => !seen.has(key(unit.id)))
      .sort((a, b) => unitName(a, locale).localeCompare(unitName(b, locale), locale))
      .map((unit) => {
        seen.add(key(unit.id))
        const effectiveTenant = unit.scope ?? (unit.tenant || tenant)
        const here = [...path, unitName(unit, locale)]
        return { ...unit, depth, effectiveTenant, path: here,
          children: grow(key(unit.id), depth + 1, effectiveTenant, here) }
      })
  }
  return grow('', 0, null, [])
}

/** Every node, parents before children (for selects). */
export function flatten(nodes: UnitNode[]): UnitNode[] {
  return nodes.flatMap((node) => [node, ...flatten(node.children)])
}

/** The tenants the tree names, sorted. */
export function tenantsOf(units: OrgUnit[]): string[] {
  return [...new Set(units.map((u) => u.tenant).filter((t): t is string => Boolean(t) && t !== '*'))].sort()
}
