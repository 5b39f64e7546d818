/** Types of bin/cli-bundle.js (plain JavaScript, so the CLI can decide before loading tsx). */
export declare const PACKAGE_ROOT: string;
export declare const CLI_BUILD_DIR: string;
export declare function stamp(path: string): string | undefined;
export declare function freshCliBundle(entry?: string, dir?: string): string | undefined;
export declare function writeCliManifest(
  dir: string,
  build: string,
  entries: readonly string[],
  inputs: Readonly<Record<string, string>>,
): void;
export declare function rebuildCliInBackground(dir?: string): void;
