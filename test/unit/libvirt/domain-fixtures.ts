/** The domain XML fixtures in test/fixtures/domains/, read as text. */
import { readFileSync } from 'node:fs';
import { repoPath } from '../../support/repo.js';

export const DOMAIN_FIXTURES = [
  'no-hostdevs',
  'single-hostdev',
  'stale-token',
  'interface-hostdev',
  'multifunction',
  'decimal-attributes',
  'network-pool-prepare',
  'network-pool-start',
  'network-pool-status',
  'user-qemu-override',
  'gpu-and-cx5',
] as const;

export type DomainFixture = (typeof DOMAIN_FIXTURES)[number];

export function domainFixturePath(name: DomainFixture): string {
  return repoPath('test', 'fixtures', 'domains', `${name}.xml`);
}

export function domainFixture(name: DomainFixture): string {
  return readFileSync(domainFixturePath(name), 'utf8');
}

/** The token of PF 0000:3b:00.0 that single-hostdev and the network-pool fixtures present. */
export const CURRENT_TOKEN = '8a6c2f0e-3f4b-4d8a-9c1e-5b7d2e4f6a80';
/** The token stale-token presents: an earlier generation for the same PF. */
export const STALE_TOKEN = '11111111-2222-4333-8444-555555555555';
