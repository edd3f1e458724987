// Validates an OpenAPI document against the OpenAPI specification's JSON
// schema for its version (@seriousme/openapi-schema-validator), offline.
// Usage: node validate-openapi.mjs FILE. Prints "ok VERSION" and exits 0, or
// prints the errors and exits 1.
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";

const doc = JSON.parse(readFileSync(process.argv[2], "utf8"));
const validator = new Validator();
const res = await validator.validate(doc);
if (res.valid) {
  console.log(`ok ${validator.version}`);
} else {
  console.log(JSON.stringify(res.errors, null, 1));
  process.exit(1);
}
