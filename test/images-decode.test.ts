import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { crc32, deflateSync } from "node:zlib";
import sharp from "sharp";
import { ValidationError } from "../shared/errors.ts";
import {
  type DecodedImage,
  decodeImage,
  ImageDecodeError,
  type ImageDecodeReason,
  pixelsToTensor,
} from "../shared/images/decode.ts";

type RGB = [number, number, number];

/** Raw RGB(A) pixels from a function of (x, y). */
function rawImage(
  width: number,
  height: number,
  channels: 1 | 2 | 3 | 4,
  px: (x: number, y: number) => number[],
) {
  const data = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) data.set(px(x, y), (y * width + x) * channels);
  return sharp(data, { raw: { width, height, channels } });
}

function pixel(img: DecodedImage, x: number, y: number): RGB {
  const i = (y * img.width + x) * 3;
  return [img.data[i], img.data[i + 1], img.data[i + 2]];
}

function assertNear(actual: RGB, expected: RGB, tol: number, what: string): void {
  const ok = actual.every((v, c) => Math.abs(v - expected[c]) <= tol);
  assert.ok(ok, `${what}: got ${actual.join(",")}, expected ${expected.join(",")} ±${tol}`);
}

/** Deterministic noise: photos compress poorly, so truncating one cuts real pixel data. */
function noisy(width: number, height: number) {
  let s = 12345;
  return rawImage(width, height, 3, () => {
    const v: number[] = [];
    for (let c = 0; c < 3; c++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      v.push(s >>> 24);
    }
    return v;
  });
}

/** A PNG written by hand, for what sharp will not write: 16-bit RGB, or a header that lies. */
function handPng(width: number, height: number, bitDepth: 8 | 16, rows: Uint8Array): Buffer {
  const chunk = (type: string, body: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    const typed = Buffer.concat([Buffer.from(type, "latin1"), body]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(typed));
    return Buffer.concat([len, typed, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = 2; // truecolour RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(rows)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

async function assertDecodeError(
  bytes: Uint8Array,
  reason: ImageDecodeReason,
  opts: Partial<Parameters<typeof decodeImage>[1]> = {},
  message?: RegExp,
): Promise<void> {
  await assert.rejects(
    decodeImage(bytes, { width: 8, height: 8, resize: "stretch", ...opts }),
    (err: unknown) => {
      assert.ok(err instanceof ImageDecodeError, `expected ImageDecodeError, got ${String(err)}`);
      assert.ok(err instanceof ValidationError);
      assert.equal(err.reason, reason, err.message);
      assert.equal(err.code, "invalid_input");
      if (message) assert.match(err.message, message);
      return true;
    },
  );
}

const RED: RGB = [200, 30, 40];

describe("decodeImage: formats and colours", () => {
  const solid = () => rawImage(64, 48, 3, () => RED);
  const cases: Array<[string, () => Promise<Buffer>, number]> = [
    ["png", () => solid().png().toBuffer(), 0],
    // Lossy and palette formats drift a few levels even on a flat colour.
    ["jpeg", () => solid().jpeg({ quality: 90 }).toBuffer(), 6],
    ["webp", () => solid().webp({ quality: 90 }).toBuffer(), 6],
    ["gif", () => solid().gif().toBuffer(), 8],
  ];
  for (const [format, make, tol] of cases) {
    test(`${format} decodes to the target size and colour (±${tol})`, async () => {
      const img = await decodeImage(await make(), { width: 20, height: 10, resize: "stretch" });
      assert.equal(img.format, format);
      assert.equal(img.width, 20);
      assert.equal(img.height, 10);
      assert.equal(img.channels, 3);
      assert.equal(img.data.length, 20 * 10 * 3);
      assert.equal(img.originalWidth, 64);
      assert.equal(img.originalHeight, 48);
      for (const [x, y] of [
        [0, 0],
        [19, 9],
        [10, 5],
      ])
        assertNear(pixel(img, x, y), RED, tol, `${format} pixel ${x},${y}`);
    });
  }

  test("grayscale becomes RGB with equal channels", async () => {
    const png = await rawImage(8, 8, 1, (x) => [x < 4 ? 90 : 250])
      .toColourspace("b-w")
      .png()
      .toBuffer();
    assert.equal((await sharp(png).metadata()).channels, 1);
    const img = await decodeImage(png, { width: 8, height: 8, resize: "stretch" });
    assert.deepEqual(pixel(img, 1, 3), [90, 90, 90]);
    assert.deepEqual(pixel(img, 6, 3), [250, 250, 250]);
  });

  test("alpha is composited on white", async () => {
    // Left: opaque red. Middle: half-transparent blue. Right: fully transparent black.
    const png = await rawImage(9, 3, 4, (x) =>
      x < 3 ? [255, 0, 0, 255] : x < 6 ? [0, 0, 255, 128] : [0, 0, 0, 0],
    )
      .png()
      .toBuffer();
    const img = await decodeImage(png, { width: 9, height: 3, resize: "stretch" });
    assertNear(pixel(img, 1, 1), [255, 0, 0], 0, "opaque");
    assertNear(pixel(img, 4, 1), [127, 127, 255], 2, "half-transparent");
    assertNear(pixel(img, 7, 1), [255, 255, 255], 0, "transparent");
  });

  test("gray with alpha is composited on white too", async () => {
    const png = await rawImage(4, 1, 2, (x) => (x < 2 ? [0, 255] : [0, 0]))
      .png()
      .toBuffer();
    const img = await decodeImage(png, { width: 4, height: 1, resize: "stretch" });
    assert.deepEqual(pixel(img, 0, 0), [0, 0, 0]);
    assert.deepEqual(pixel(img, 3, 0), [255, 255, 255]);
  });

  test("16-bit PNG is scaled to 8 bits", async () => {
    const rows = new Uint8Array(1 + 2 * 3 * 2);
    const view = new DataView(rows.buffer);
    for (const [i, v] of [0, 32896, 65535, 2570, 65535, 0].entries()) view.setUint16(1 + i * 2, v);
    const png = handPng(2, 1, 16, rows);
    const meta = await sharp(png).metadata();
    assert.equal(meta.depth, "ushort");
    const img = await decodeImage(png, { width: 2, height: 1, resize: "stretch" });
    assert.deepEqual([...img.data], [0, 128, 255, 10, 255, 0]);
  });

  test("animated GIF: the first frame", async () => {
    const frames = rawImage(8, 16, 3, (_x, y) => (y < 8 ? [255, 0, 0] : [0, 0, 255]));
    const gif = await sharp(await frames.raw().toBuffer(), {
      raw: { width: 8, height: 16, channels: 3, pageHeight: 8 },
    })
      .gif()
      .toBuffer();
    assert.equal((await sharp(gif).metadata()).pages, 2);
    const img = await decodeImage(gif, { width: 4, height: 4, resize: "stretch" });
    assert.equal(img.originalHeight, 8);
    assertNear(pixel(img, 2, 2), [255, 0, 0], 8, "frame 1");
  });
});

describe("decodeImage: geometry", () => {
  // A 40×20 image with a red 10×10 block in its stored top-left corner.
  const cornered = () => rawImage(40, 20, 3, (x, y) => (x < 10 && y < 10 ? [255, 0, 0] : [0, 0, 0]));

  test("without EXIF orientation the red corner stays top-left", async () => {
    const jpeg = await cornered().jpeg({ quality: 95 }).toBuffer();
    const img = await decodeImage(jpeg, { width: 40, height: 20, resize: "stretch" });
    assertNear(pixel(img, 4, 4), [255, 0, 0], 40, "top-left");
    assertNear(pixel(img, 35, 4), [0, 0, 0], 40, "top-right");
  });

  test("EXIF orientation 6 (rotate 90° clockwise) is applied", async () => {
    const jpeg = await cornered().jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    assert.equal((await sharp(jpeg).metadata()).orientation, 6);
    const img = await decodeImage(jpeg, { width: 20, height: 40, resize: "stretch" });
    assert.equal(img.originalWidth, 20);
    assert.equal(img.originalHeight, 40);
    // Turning the 40×20 image clockwise puts its top-left corner at the top right.
    assertNear(pixel(img, 15, 4), [255, 0, 0], 40, "top-right after rotation");
    assertNear(pixel(img, 4, 4), [0, 0, 0], 40, "top-left after rotation");
    assertNear(pixel(img, 15, 35), [0, 0, 0], 40, "bottom-right after rotation");
  });

  // 60×20: red, green, blue bands of 20 columns each.
  const bands = () =>
    rawImage(60, 20, 3, (x) => (x < 20 ? [255, 0, 0] : x < 40 ? [0, 255, 0] : [0, 0, 255]))
      .png()
      .toBuffer();

  test("center-crop keeps only the centre of a wide image", async () => {
    const img = await decodeImage(await bands(), { width: 10, height: 10, resize: "center-crop" });
    assert.equal(img.originalWidth, 60);
    for (let y = 0; y < 10; y++) {
      for (let x = 0; x < 10; x++) {
        const [r, g, b] = pixel(img, x, y);
        // Edge columns may pick up a little of the neighbouring band through the filter.
        assert.ok(g > 200 && r < 60 && b < 60, `pixel ${x},${y} = ${r},${g},${b} should be green`);
      }
    }
  });

  test("stretch keeps all three bands", async () => {
    const img = await decodeImage(await bands(), { width: 30, height: 10, resize: "stretch" });
    assertNear(pixel(img, 3, 5), [255, 0, 0], 0, "left");
    assertNear(pixel(img, 15, 5), [0, 255, 0], 0, "middle");
    assertNear(pixel(img, 26, 5), [0, 0, 255], 0, "right");
  });

  test("center-crop of a tall image keeps its vertical centre", async () => {
    const tall = await rawImage(10, 30, 3, (_x, y) =>
      y < 10 ? [255, 0, 0] : y < 20 ? [0, 255, 0] : [0, 0, 255],
    )
      .png()
      .toBuffer();
    const img = await decodeImage(tall, { width: 5, height: 5, resize: "center-crop" });
    assertNear(pixel(img, 2, 0), [0, 255, 0], 60, "top row");
    assertNear(pixel(img, 2, 4), [0, 255, 0], 60, "bottom row");
  });

  test("enlarging works", async () => {
    const small = await rawImage(2, 2, 3, () => RED)
      .png()
      .toBuffer();
    const img = await decodeImage(small, { width: 7, height: 5, resize: "center-crop" });
    assert.equal(img.data.length, 7 * 5 * 3);
    assertNear(pixel(img, 3, 2), RED, 1, "centre");
  });
});

describe("decodeImage: refusals", () => {
  test("zero bytes → empty", async () => {
    await assertDecodeError(new Uint8Array(0), "empty");
  });

  test("truncated JPEG → corrupt", async () => {
    const jpeg = await noisy(256, 256).jpeg({ quality: 90 }).toBuffer();
    for (const keep of [0.6, 0.95]) {
      await assertDecodeError(jpeg.subarray(0, Math.floor(jpeg.length * keep)), "corrupt");
    }
  });

  test("truncated progressive JPEG → corrupt", async () => {
    const jpeg = await noisy(256, 256).jpeg({ quality: 90, progressive: true }).toBuffer();
    await assertDecodeError(jpeg.subarray(0, Math.floor(jpeg.length * 0.8)), "corrupt");
  });

  test("truncated PNG → corrupt", async () => {
    const png = await noisy(256, 256).png().toBuffer();
    for (const keep of [0.6, 0.95]) {
      await assertDecodeError(png.subarray(0, Math.floor(png.length * keep)), "corrupt");
    }
  });

  test("truncated GIF and WebP → corrupt", async () => {
    const gif = await noisy(128, 128).gif().toBuffer();
    await assertDecodeError(gif.subarray(0, Math.floor(gif.length * 0.7)), "corrupt");
    const webp = await noisy(128, 128).webp().toBuffer();
    await assertDecodeError(webp.subarray(0, Math.floor(webp.length * 0.7)), "corrupt");
  });

  test("a header alone → corrupt", async () => {
    const jpeg = await noisy(64, 64).jpeg().toBuffer();
    await assertDecodeError(jpeg.subarray(0, 40), "corrupt");
    // JPEG magic followed by garbage.
    const fake = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(200, 0x5a)]);
    await assertDecodeError(fake, "corrupt");
  });

  test("random bytes and text → unsupported-format", async () => {
    let s = 7;
    const random = Uint8Array.from({ length: 4096 }, () => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return s >>> 24;
    });
    random[0] = 0x00; // make sure the noise does not start with a real signature
    await assertDecodeError(random, "unsupported-format", {}, /not a recognised image/);
    await assertDecodeError(Buffer.from("label,text\ncat,hello\n"), "unsupported-format");
  });

  test("SVG, PDF, TIFF, AVIF are refused by name, before sharp renders them", async () => {
    const svg = Buffer.from(
      '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="red"/></svg>',
    );
    assert.equal((await sharp(svg).metadata()).format, "svg", "sharp itself would open it");
    await assertDecodeError(svg, "unsupported-format", {}, /SVG is not supported/);
    await assertDecodeError(
      Buffer.from('  <svg xmlns="http://www.w3.org/2000/svg"/>'),
      "unsupported-format",
      {},
      /SVG/,
    );
    await assertDecodeError(Buffer.from("%PDF-1.7\n%âãÏÓ\n1 0 obj\n"), "unsupported-format", {}, /PDF/);
    const tiff = await noisy(8, 8).tiff().toBuffer();
    await assertDecodeError(tiff, "unsupported-format", {}, /TIFF/);
    const avif = await noisy(8, 8).avif().toBuffer();
    await assertDecodeError(avif, "unsupported-format", {}, /HEIF\/AVIF/);
  });

  test("more bytes than maxBytes → too-large", async () => {
    const png = await noisy(32, 32).png().toBuffer();
    await assertDecodeError(png, "too-large", { limits: { maxBytes: png.length - 1 } });
    const ok = await decodeImage(png, {
      width: 8,
      height: 8,
      resize: "stretch",
      limits: { maxBytes: png.length },
    });
    assert.equal(ok.width, 8);
  });

  test("a tiny PNG declaring 30000×30000 → too-many-pixels, without decoding", async () => {
    // One row of real data; the header promises 900 megapixels.
    const bomb = handPng(30000, 30000, 8, new Uint8Array(1 + 30000 * 3));
    assert.ok(bomb.length < 2000);
    await assertDecodeError(bomb, "too-many-pixels", {}, /30000×30000/);
    // Even with a limit high enough to pass our check, the (truncated) data is refused, not padded.
    await assertDecodeError(bomb, "corrupt", { limits: { maxPixels: 1e9 } });
  });

  test("a real image over maxPixels → too-many-pixels", async () => {
    const png = await noisy(100, 100).png().toBuffer();
    await assertDecodeError(png, "too-many-pixels", { limits: { maxPixels: 9_999 } });
    const ok = await decodeImage(png, {
      width: 8,
      height: 8,
      resize: "stretch",
      limits: { maxPixels: 10_000 },
    });
    assert.equal(ok.originalWidth, 100);
  });

  test("errors name the input", async () => {
    await assert.rejects(
      decodeImage(new Uint8Array(0), { width: 8, height: 8, resize: "stretch", name: "cats/a.jpg" }),
      (err: ImageDecodeError) => {
        assert.equal(err.field, "cats/a.jpg");
        assert.match(err.message, /^image cats\/a\.jpg: file is empty/);
        assert.deepEqual(err.toJSON(), {
          code: "invalid_input",
          message: err.message,
          field: "cats/a.jpg",
          details: { reason: "empty" },
        });
        return true;
      },
    );
  });

  test("bad options are ValidationErrors, not decode errors", async () => {
    const png = await noisy(8, 8).png().toBuffer();
    for (const [opts, field] of [
      [{ width: 0, height: 8, resize: "stretch" }, "width"],
      [{ width: 8, height: 8.5, resize: "stretch" }, "height"],
      [{ width: 8, height: 8, resize: "fit" }, "resize"],
      [{ width: 8, height: 8, resize: "stretch", limits: { maxPixels: -1 } }, "limits.maxPixels"],
    ] as const) {
      await assert.rejects(decodeImage(png, opts as Parameters<typeof decodeImage>[1]), (err: unknown) => {
        assert.ok(err instanceof ValidationError && !(err instanceof ImageDecodeError), String(err));
        assert.equal(err.field, field);
        return true;
      });
    }
  });
});

describe("pixelsToTensor", () => {
  const img: DecodedImage = {
    data: Uint8Array.from([0, 1, 127, 128, 254, 255]),
    width: 2,
    height: 1,
    channels: 3,
    format: "png",
    originalWidth: 2,
    originalHeight: 1,
  };

  test("x = pixel/255*scale + offset, exactly as float32", () => {
    for (const norm of [
      { scale: 2, offset: -1 },
      { scale: 1, offset: 0 },
      { scale: 255, offset: 0 },
      { scale: 1 / 0.226, offset: -0.449 / 0.226 },
    ]) {
      const t = pixelsToTensor(img, norm);
      assert.equal(t.length, 6);
      assert.deepEqual(
        [...t],
        [...img.data].map((p) => Math.fround((p / 255) * norm.scale + norm.offset)),
      );
    }
    const t = pixelsToTensor(img, { scale: 2, offset: -1 });
    assert.equal(t[0], -1);
    assert.equal(t[5], 1);
    assert.deepEqual([...pixelsToTensor(img, { scale: 255, offset: 0 })], [0, 1, 127, 128, 254, 255]);
  });

  test("packs a batch into one array at the given offsets", () => {
    const other: DecodedImage = { ...img, data: Uint8Array.from([255, 255, 255, 0, 0, 0]) };
    const out = new Float32Array(2 + 12).fill(Number.NaN);
    const ret = pixelsToTensor(img, { scale: 1, offset: 0 }, out, 1);
    assert.equal(ret, out);
    pixelsToTensor(other, { scale: 1, offset: 0 }, out, 7);
    assert.ok(Number.isNaN(out[0]) && Number.isNaN(out[13]), "outside the two slots is untouched");
    assert.deepEqual(
      [...out.subarray(1, 7)],
      [...img.data].map((p) => Math.fround(p / 255)),
    );
    assert.deepEqual([...out.subarray(7, 13)], [1, 1, 1, 0, 0, 0]);
  });

  test("refuses slots that do not fit and mismatched data", () => {
    assert.throws(() => pixelsToTensor(img, { scale: 1, offset: 0 }, new Float32Array(8), 3), {
      name: "ValidationError",
    });
    assert.throws(() => pixelsToTensor(img, { scale: 1, offset: 0 }, undefined, 6), {
      name: "ValidationError",
    });
    assert.throws(() => pixelsToTensor({ ...img, width: 3 }, { scale: 1, offset: 0 }), {
      name: "ValidationError",
    });
    assert.throws(() => pixelsToTensor(img, { scale: Number.NaN, offset: 0 }), { name: "ValidationError" });
  });

  test("a decoded image goes straight in", async () => {
    const png = await rawImage(4, 4, 3, () => [51, 102, 255])
      .png()
      .toBuffer();
    const decoded = await decodeImage(png, { width: 2, height: 2, resize: "stretch" });
    const t = pixelsToTensor(decoded, { scale: 2, offset: -1 });
    assert.equal(t.length, 12);
    assert.deepEqual(
      [...t.subarray(0, 3)],
      [51, 102, 255].map((p) => Math.fround((p / 255) * 2 - 1)),
    );
  });
});
