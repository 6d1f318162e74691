/**
 * The first lines of the installed hook: scripts/build-hook.mjs puts the bundled hook
 * (qemu-hook-main.ts and all it imports) into HOOK_SOURCE as a string and its SHA-256 into
 * HOOK_BUILD, and this runs it through the code cache (code-cache.ts). VFBROKER_HOOK_CODE_CACHE names another cache file, or none when
 * empty — for the tests and benches; libvirt never passes it.
 */
import { DEFAULT_CODE_CACHE, runWithCodeCache } from './code-cache.js';

declare const HOOK_SOURCE: string;
declare const HOOK_BUILD: string;

const cacheFile = process.env['VFBROKER_HOOK_CODE_CACHE'] ?? DEFAULT_CODE_CACHE;
const hookModule = { exports: {} };
runWithCodeCache(
  { source: HOOK_SOURCE, build: HOOK_BUILD },
  { exports: hookModule.exports, require, module: hookModule, filename: __filename, dirname: __dirname },
  cacheFile === '' ? null : cacheFile,
);
