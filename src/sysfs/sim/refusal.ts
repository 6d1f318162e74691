/**
 * How the model says "the kernel returned -errno": it throws a SimRefusal, and the simulator's
 * facade turns it into the same error RealSysfs would raise for that path and operation.
 */
export class SimRefusal extends Error {
  override readonly name = 'SimRefusal';
  constructor(readonly errno: string) {
    super(errno);
  }
}

export function refuse(errno: string): never {
  throw new SimRefusal(errno);
}
