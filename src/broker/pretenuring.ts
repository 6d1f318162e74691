/**
 * The broker's one V8 setting: no allocation-site pretenuring (decision 0009).
 *
 * V8 watches the objects each literal in the code creates; when nearly all of one literal's objects
 * are still alive at a young-generation collection, it allocates that literal's objects straight in
 * the old generation from then on, for good. A burst of calls — guests starting together, each
 * call waiting on the bus for its caller's credentials — keeps everything the calls allocated
 * alive, so V8 marks the literals of dbus-next's marshaller and of the audit line long-lived. Every
 * reply's scratch objects then go to the old generation: a mark-compact every 0.4 s under load,
 * each stopping the broker for 12–17 ms with 64 calls in flight, which was the whole p99 of
 * `npm run bench:broker`. Without pretenuring those objects die young, where collecting them is cheap.
 */
import { setFlagsFromString } from 'node:v8';

/**
 * Turns pretenuring off for this process. Call it before the broker allocates anything: a literal
 * V8 has already marked long-lived stays so.
 */
export function disablePretenuring(): void {
  setFlagsFromString('--no-allocation-site-pretenuring');
}
