/** headstart's version, from package.json (inlined by the bundler, so Lambdas carry it too). */
import pkg from "../package.json" with { type: "json" };

export const VERSION: string = pkg.version;
