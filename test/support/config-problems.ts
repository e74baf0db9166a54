// The `dot.path: message` problems a config document is refused with, for config tests.
import { expect } from "vitest";
import { validateConfig } from "../../src/config/load.js";
import { ConfigError } from "../../src/core/errors.js";

/** The problems `doc` is refused with; fails the test when it is accepted. */
export function problemsOf(doc: unknown): readonly string[] {
  try {
    validateConfig(doc, "t.json");
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error("expected a ConfigError");
}
