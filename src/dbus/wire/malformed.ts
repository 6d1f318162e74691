import { VfbError } from '../../errors.js';

/**
 * Bytes that are not a well-formed D-Bus message, or values that do not fit their signature. `why`
 * names the defect without quoting values: a value may be a token. The connection and the client
 * turn it into the error of the call it concerns.
 */
export class MalformedMessage extends VfbError {
  constructor(readonly why: string) {
    super('INTERNAL', `malformed D-Bus message: ${why}`);
  }
}
