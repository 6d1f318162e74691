/**
 * vfbroker's own PF holder, for plugins that start it: where its entry point is, and the types of its
 * stdin/stdout protocol (see protocol.ts). The holder runs as a child process, so nothing here loads
 * the VFIO layer.
 */
import { fileURLToPath } from 'node:url';

/** Absolute path of the holder's entry point: `node <PF_HOLDER_MAIN> --pf <DDDD:BB:DD.F>`. */
export const PF_HOLDER_MAIN: string = fileURLToPath(new URL('./main.js', import.meta.url));

export type { HolderFailure, HolderReady, HolderReply, HolderRequest } from './protocol.js';
