/**
 * Resolved configuration is deep-frozen: the broker, the plugins and the policy evaluator share one
 * instance, and none of them may change what another one reads. The resolved types already say
 * `readonly` everywhere; this makes it true at run time too.
 */

/** Freezes plain objects and arrays all the way down (resolved config holds nothing else). */
export function deepFreeze<T>(value: T): T {
  // Iterative: the data's depth is bounded by the loader, but not by this function's stack.
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const v = pending.pop();
    if (typeof v !== 'object' || v === null || Object.isFrozen(v)) continue;
    Object.freeze(v);
    for (const child of Object.values(v)) pending.push(child);
  }
  return value;
}
