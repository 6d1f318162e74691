/**
 * User and group names in policy.yaml resolve to ids when the policy is loaded, from the passwd and
 * group files under a root directory (`/` on a host, a fixture tree in tests). The broker decides
 * from the uid and gids the bus vouches for, so names are looked up once, not per call.
 *
 * Only the files are read, not NSS: accounts from LDAP or sssd are not found by name, and the policy
 * names them by id instead. The error for an unknown name says so.
 */
import { join } from 'node:path';
import { readBoundedText } from './bounded-file.js';

/** /etc/passwd on a host with tens of thousands of local accounts is a few MB. */
const MAX_ACCOUNT_FILE_BYTES = 16 * 1024 * 1024;
/** The largest id; 4294967295 is (uid_t)-1, "no id". */
export const MAX_ID = 4_294_967_294;

export interface Accounts {
  readonly passwdFile: string;
  readonly groupFile: string;
  uid(name: string): number | null;
  gid(name: string): number | null;
}

export async function readAccounts(root = '/'): Promise<Accounts> {
  const passwdFile = join(root, 'etc/passwd');
  const groupFile = join(root, 'etc/group');
  // One after the other: when both are unreadable, the error always names passwd (with both read at
  // once, whichever failed first would be reported).
  const passwd = await readBoundedText(passwdFile, MAX_ACCOUNT_FILE_BYTES);
  const group = await readBoundedText(groupFile, MAX_ACCOUNT_FILE_BYTES);
  return parseAccounts(passwd, group, { passwdFile, groupFile });
}

export function parseAccounts(
  passwd: string,
  group: string,
  files: { readonly passwdFile: string; readonly groupFile: string },
): Accounts {
  // Both files have the name in field 1 and the id in field 3 (`name:x:id:…`).
  const users = parseIdFile(passwd);
  const groups = parseIdFile(group);
  return {
    ...files,
    uid: (name) => users.get(name) ?? null,
    gid: (name) => groups.get(name) ?? null,
  };
}

function parseIdFile(text: string): Map<string, number> {
  const ids = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':', 3);
    // Skip comments, blank lines and the NIS compat entries (`+name`, `-name`) glibc also skips.
    if (
      name === undefined ||
      name === '' ||
      /^[#+-]/.test(name) ||
      id === undefined ||
      !/^[0-9]{1,10}$/.test(id)
    )
      continue;
    const n = Number(id);
    // The first entry wins, as with getpwnam() over files.
    if (n <= MAX_ID && !ids.has(name)) ids.set(name, n);
  }
  return ids;
}
