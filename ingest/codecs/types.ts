/** What a codec extracts from one uplink. `null` means the frame does not carry that value. */
export interface DecodedReading {
  occupied: boolean | null;
  batteryVolts: number | null;
  temperatureC: number | null;
}

/** A sensor codec: pure, synchronous, throws PlatformError('DECODE_FAILED') on a payload it cannot read. */
export type Codec = (fPort: number, payload: Buffer) => DecodedReading;
