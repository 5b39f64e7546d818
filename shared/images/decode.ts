/**
 * Image bytes → fixed-size RGB pixels → float32 model input.
 *
 * - `decodeImage(bytes, { width, height, resize, limits?, name? })` decodes JPEG, PNG, WebP or GIF
 *   (first frame) into `width×height×3` uint8 RGB, HWC row-major, after applying the EXIF
 *   orientation, compositing any alpha on white and converting grayscale, CMYK, palette and
 *   16-bit sources to 8-bit sRGB. `resize: "stretch"` scales to exactly the target, ignoring the
 *   aspect ratio; `"center-crop"` scales the shorter side to the target and cuts the centre.
 *   `originalWidth`/`originalHeight` are the upright source size (after EXIF orientation).
 * - Every problem with the bytes is an `ImageDecodeError` (a `ValidationError`, so HTTP 400 /
 *   CLI exit 2) with a `reason`: `empty`, `too-large`, `too-many-pixels`, `unsupported-format`,
 *   `corrupt`. Its `field` is `opts.name` (e.g. the row's image path) or `image`. Bad options
 *   (a target size of 0, a negative limit) are plain `ValidationError`s: they are the caller's bug.
 * - `pixelsToTensor(img, { scale, offset }, out?, outOffset?)` writes `pixel/255*scale + offset`
 *   as float32 NHWC; pass one pre-allocated `out` and `outOffset = i*width*height*3` to pack a
 *   batch without copies. `{scale: 2, offset: -1}` gives [-1, 1]; `{scale: 1, offset: 0}` [0, 1].
 *
 * Throughput: sharp decodes on libuv's thread pool (UV_THREADPOOL_SIZE, default 4) and libvips
 * threads, never on the JS thread, so callers should keep several `decodeImage` calls in flight
 * (e.g. `Promise.all` over a micro-batch) rather than awaiting them one by one; more than the
 * pool size just queue. Memory per decode is bounded by `limits` and by libvips streaming the
 * source (sequential read), not by the source's full decoded size.
 */
import type { Metadata, OutputInfo } from "sharp";
import { ValidationError } from "../errors.ts";

/**
 * sharp (libvips, ≈ 80 ms to load) is imported on the first decode, so a process that predicts
 * from texts or embeddings (the API Lambda's usual cold start) never pays for it.
 */
let sharpModule: Promise<typeof import("sharp")> | undefined;
async function loadSharp() {
  sharpModule ??= import("sharp");
  return (await sharpModule).default;
}

export const IMAGE_FORMATS = ["jpeg", "png", "webp", "gif"] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

export type ImageDecodeReason = "empty" | "too-large" | "too-many-pixels" | "unsupported-format" | "corrupt";

/** The bytes are not an image we can use. `reason` is stable; the message is for people. */
export class ImageDecodeError extends ValidationError {
  readonly reason: ImageDecodeReason;

  constructor(reason: ImageDecodeReason, message: string, opts: { field?: string; cause?: unknown } = {}) {
    super(message, { field: opts.field ?? "image", details: { reason }, cause: opts.cause });
    this.reason = reason;
  }
}

export interface ImageLimits {
  /** Largest accepted input, in bytes. */
  maxBytes?: number;
  /** Largest accepted source width×height, checked on the header before any pixel is decoded. */
  maxPixels?: number;
}

/** 20 MB covers any camera JPEG; 50 megapixels any phone or DSLR photo (8K video is 33 MP). */
export const DEFAULT_IMAGE_LIMITS: Required<ImageLimits> = {
  maxBytes: 20 * 1024 * 1024,
  maxPixels: 50_000_000,
};

/** Model inputs are small; this only stops a typo from allocating gigabytes. */
export const MAX_TARGET_SIDE = 4096;

export interface DecodeImageOptions {
  width: number;
  height: number;
  resize: "stretch" | "center-crop";
  limits?: ImageLimits;
  /** What to call the input in errors (a row's image path): the error's `field`. */
  name?: string;
}

export interface DecodedImage {
  /** `width*height*3` bytes, RGB, row-major (HWC). */
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3;
  format: ImageFormat;
  /** Upright source size, after the EXIF orientation. */
  originalWidth: number;
  originalHeight: number;
}

const FORMAT_LABEL: Record<ImageFormat, string> = { jpeg: "JPEG", png: "PNG", webp: "WebP", gif: "GIF" };
const ACCEPTED = IMAGE_FORMATS.map((f) => FORMAT_LABEL[f]).join(", ");

function startsWith(bytes: Uint8Array, sig: readonly number[], at = 0): boolean {
  if (bytes.length < at + sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (bytes[at + i] !== sig[i]) return false;
  return true;
}
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

/**
 * The format by magic bytes, before sharp sees the input: sharp (librsvg, poppler, libheif…) can
 * open far more than we accept, and SVG in particular is an XML document renderer with its own
 * attack surface. Only the four raster formats below ever reach it.
 */
export function sniff(bytes: Uint8Array): ImageFormat | { refused: string } {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return "jpeg";
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "png";
  if (startsWith(bytes, ascii("GIF87a")) || startsWith(bytes, ascii("GIF89a"))) return "gif";
  if (startsWith(bytes, ascii("RIFF")) && startsWith(bytes, ascii("WEBP"), 8)) return "webp";
  // Named only for a better message; everything else is "not an image".
  if (startsWith(bytes, ascii("%PDF"))) return { refused: "PDF" };
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a]))
    return { refused: "TIFF" };
  if (startsWith(bytes, ascii("ftyp"), 4)) return { refused: "HEIF/AVIF" };
  if (startsWith(bytes, ascii("BM"))) return { refused: "BMP" };
  const head = new TextDecoder()
    .decode(bytes.subarray(0, 1024))
    .replace(/^\uFEFF/, "")
    .trimStart();
  if (/^<(\?xml|svg|!DOCTYPE svg|!--)/i.test(head) && /<svg[\s>]/i.test(head)) return { refused: "SVG" };
  return { refused: "" };
}

function checkPositiveInt(value: number, field: string, max: number): void {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new ValidationError(`${field} must be an integer from 1 to ${max}, got ${value}`, { field });
  }
}

export async function decodeImage(bytes: Uint8Array, opts: DecodeImageOptions): Promise<DecodedImage> {
  const { maxBytes, maxPixels } = checkOptions(opts);
  const fail = failureFor(opts.name);
  const format = checkBytes(bytes, maxBytes, fail);
  const sharp = await loadSharp();
  const source = await readHeader(sharp, bytes, { format, maxPixels, fail });
  const out = await decodePixels(sharp, bytes, opts, { format, maxPixels, fail });
  const { info } = out;
  if (info.width !== opts.width || info.height !== opts.height || info.channels !== 3) {
    throw new Error(
      `sharp returned ${info.width}×${info.height}×${info.channels}, expected ${opts.width}×${opts.height}×3`,
    );
  }
  return {
    data: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength),
    width: info.width,
    height: info.height,
    channels: 3,
    format,
    originalWidth: source.width,
    originalHeight: source.height,
  };
}

/** The target size, resize mode and limits, checked: bad options are the caller's bug. */
function checkOptions(opts: DecodeImageOptions): Required<ImageLimits> {
  checkPositiveInt(opts.width, "width", MAX_TARGET_SIDE);
  checkPositiveInt(opts.height, "height", MAX_TARGET_SIDE);
  if (opts.resize !== "stretch" && opts.resize !== "center-crop") {
    throw new ValidationError(
      `resize must be "stretch" or "center-crop", got ${JSON.stringify(opts.resize)}`,
      {
        field: "resize",
      },
    );
  }
  const maxBytes = opts.limits?.maxBytes ?? DEFAULT_IMAGE_LIMITS.maxBytes;
  const maxPixels = opts.limits?.maxPixels ?? DEFAULT_IMAGE_LIMITS.maxPixels;
  checkPositiveInt(maxBytes, "limits.maxBytes", Number.MAX_SAFE_INTEGER);
  checkPositiveInt(maxPixels, "limits.maxPixels", Number.MAX_SAFE_INTEGER);
  return { maxBytes, maxPixels };
}

type Fail = (reason: ImageDecodeReason, message: string, cause?: unknown) => ImageDecodeError;

/** Errors about the bytes name the input (`image photos/1.jpg: …`) and point at it. */
function failureFor(name: string | undefined): Fail {
  const field = name ?? "image";
  const what = name === undefined ? "image" : `image ${name}`;
  return (reason, message, cause) => new ImageDecodeError(reason, `${what}: ${message}`, { field, cause });
}

/** What the decode steps after the sniff share. */
interface DecodeState {
  format: ImageFormat;
  maxPixels: number;
  fail: Fail;
}

/** The checks that need no decoder: not empty, not too large, one of the accepted formats. */
function checkBytes(bytes: Uint8Array, maxBytes: number, fail: Fail): ImageFormat {
  if (bytes.length === 0) throw fail("empty", "file is empty");
  if (bytes.length > maxBytes) {
    throw fail("too-large", `${bytes.length} bytes is more than the limit of ${maxBytes}`);
  }
  const format = sniff(bytes);
  if (typeof format !== "string") {
    throw fail(
      "unsupported-format",
      format.refused
        ? `${format.refused} is not supported (use ${ACCEPTED})`
        : `not a recognised image (use ${ACCEPTED})`,
    );
  }
  return format;
}

type Sharp = Awaited<ReturnType<typeof loadSharp>>;

/** The upright source size from the header, refused when it claims more pixels than the limit. */
async function readHeader(
  sharp: Sharp,
  bytes: Uint8Array,
  { format, maxPixels, fail }: DecodeState,
): Promise<{ width: number; height: number }> {
  let meta: Metadata;
  try {
    // Header only, no pixel buffer: safe without the pixel limit, and lets the limit's error
    // say how big the image claims to be.
    meta = await sharp(bytes, { limitInputPixels: false, pages: 1, autoOrient: true }).metadata();
  } catch (cause) {
    throw fail("corrupt", `cannot read the ${FORMAT_LABEL[format]} header: ${messageOf(cause)}`, cause);
  }
  if (meta.format !== format) {
    // The magic bytes and libvips disagree: do not let libvips pick some other loader.
    throw fail("unsupported-format", `looks like ${FORMAT_LABEL[format]} but decodes as ${meta.format}`);
  }
  const srcW = meta.autoOrient?.width ?? meta.width;
  const srcH = meta.autoOrient?.height ?? meta.height;
  if (!(srcW > 0 && srcH > 0)) throw fail("corrupt", "header declares no pixels");
  if (srcW * srcH > maxPixels) {
    throw fail(
      "too-many-pixels",
      `${srcW}×${srcH} is ${srcW * srcH} pixels, more than the limit of ${maxPixels}`,
    );
  }
  return { width: srcW, height: srcH };
}

/** Decodes, flattens on white and resizes to the target as 8-bit sRGB. */
async function decodePixels(
  sharp: Sharp,
  bytes: Uint8Array,
  opts: DecodeImageOptions,
  { format, maxPixels, fail }: DecodeState,
): Promise<{ data: Buffer; info: OutputInfo }> {
  const image = sharp(bytes, {
    // 'error' also implies 'truncated': a cut-off JPEG/PNG/GIF fails instead of coming back
    // padded with grey or black. 'warning' (sharp's default) would also refuse the many real
    // camera and phone JPEGs that libjpeg merely warns about ("extraneous bytes before marker",
    // "invalid SOS parameters") and that every viewer shows; a user would see them as "corrupt"
    // for no visible reason. The cost: a JPEG with garbled entropy data in the middle decodes.
    failOn: "error",
    // A 1 KB PNG can declare 100000×100000 pixels. Checked above with a clearer message; this is
    // the backstop should the two header reads ever disagree.
    limitInputPixels: maxPixels,
    // Animated GIF/WebP: the first frame stands for the image, as a thumbnail would.
    pages: 1,
    autoOrient: true,
    sequentialRead: true,
  });

  try {
    return await image
      // Transparent pixels often carry arbitrary colour (commonly black); flattening on white
      // shows what the image looked like where it was made to be seen (web pages, product shots,
      // logos, icons), instead of exposing that hidden colour or turning every cut-out dark.
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .resize({
        width: opts.width,
        height: opts.height,
        fit: opts.resize === "stretch" ? "fill" : "cover",
        position: "centre",
        // Pretrained vision models are almost all trained on bilinear resizes (PIL, torchvision,
        // tf.image); libvips's 'linear' is bilinear when enlarging and a triangle filter widened
        // to the reduction factor when shrinking (antialiased, like PIL's bilinear), so features
        // match training better than the sharper lanczos3 default would. Resampling runs on the
        // sRGB-encoded values, as those training pipelines do. JPEG shrink-on-load (sharp's
        // default fastShrinkOnLoad) stays on: it makes large photos several times cheaper and
        // is deterministic, so training and serving see identical pixels.
        kernel: "linear",
      })
      .toColourspace("srgb")
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true });
  } catch (cause) {
    const msg = messageOf(cause);
    if (/pixel limit/i.test(msg)) throw fail("too-many-pixels", msg, cause);
    throw fail("corrupt", `cannot decode the ${FORMAT_LABEL[format]} data: ${msg}`, cause);
  }
}

function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0];
}

/**
 * `x = pixel/255*scale + offset` as float32, HWC order. Writes into `out` at `outOffset` when
 * given (so a batch is one NHWC array filled in place), else into a new array of exactly
 * `width*height*3`.
 */
export function pixelsToTensor(
  img: DecodedImage,
  norm: { scale: number; offset: number },
  out?: Float32Array,
  outOffset = 0,
): Float32Array {
  const n = img.width * img.height * 3;
  if (img.data.length !== n) {
    throw new ValidationError(
      `image data has ${img.data.length} bytes, expected ${img.width}×${img.height}×3`,
      {
        field: "data",
      },
    );
  }
  if (!Number.isFinite(norm.scale) || !Number.isFinite(norm.offset)) {
    throw new ValidationError("normalisation scale and offset must be finite numbers", { field: "norm" });
  }
  if (out === undefined && outOffset !== 0) {
    throw new ValidationError("outOffset needs an out array", { field: "outOffset" });
  }
  const dst = out ?? new Float32Array(n);
  if (!Number.isInteger(outOffset) || outOffset < 0 || outOffset + n > dst.length) {
    throw new ValidationError(
      `outOffset ${outOffset} + ${n} values does not fit in an array of ${dst.length}`,
      { field: "outOffset" },
    );
  }
  // 256 possible inputs: one lookup per value instead of a divide, multiply and add, and
  // every occurrence of a pixel value maps to the bit-identical float.
  const lut = new Float32Array(256);
  for (let p = 0; p < 256; p++) lut[p] = (p / 255) * norm.scale + norm.offset;
  const src = img.data;
  for (let i = 0; i < n; i++) dst[outOffset + i] = lut[src[i]];
  return dst;
}
