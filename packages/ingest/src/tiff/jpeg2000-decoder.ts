/**
 * JPEG 2000 codestream decoding through OpenJPEG, as built to WebAssembly by
 * `@cornerstonejs/codec-openjpeg` (shipped inside the npm package, nothing fetched at install).
 * Loaded on first use, so processes that never meet a JPEG 2000 TIFF do not load it.
 */

interface FrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned: boolean;
}

interface J2KDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getFrameInfo(): FrameInfo;
  getDecodedBuffer(): Uint8Array;
  delete(): void;
}

interface OpenJpegModule {
  J2KDecoder: new () => J2KDecoder;
}

export interface DecodedJpeg2000 {
  /** Interleaved samples, little-endian for more than 8 bits. */
  data: Buffer;
  width: number;
  height: number;
  components: number;
  bitsPerSample: number;
  signed: boolean;
}

let openjpeg: Promise<OpenJpegModule> | undefined;

function load(): Promise<OpenJpegModule> {
  openjpeg ??= (async () => {
    const factory = require('@cornerstonejs/codec-openjpeg/decodewasmjs') as (opts: object) => Promise<OpenJpegModule>;
    // OpenJPEG reports progress on stdout ("[INFO] Tile 1/2 has been decoded"): not ours to print.
    return factory({ print: () => undefined, printErr: () => undefined });
  })();
  return openjpeg;
}

/** Decodes one J2K codestream (as TIFF stores per tile). Throws on corrupt data. */
export async function decodeJpeg2000(stream: Uint8Array): Promise<DecodedJpeg2000> {
  const module = await load();
  const decoder = new module.J2KDecoder();
  try {
    decoder.getEncodedBuffer(stream.length).set(stream);
    decoder.decode();
    const info = decoder.getFrameInfo();
    // The decoded buffer is a view of WebAssembly memory: copy it out before the decoder is freed.
    const data = Buffer.from(decoder.getDecodedBuffer());
    return { data, width: info.width, height: info.height, components: info.componentCount, bitsPerSample: info.bitsPerSample, signed: info.isSigned };
  } finally {
    decoder.delete();
  }
}
