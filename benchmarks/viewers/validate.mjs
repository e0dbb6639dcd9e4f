// The Khronos glTF validator on one file: prints {errors, warnings, infos, messages} as JSON.
import fs from 'fs';
import validator from 'gltf-validator';

const path = process.argv[2];
const report = await validator.validateBytes(new Uint8Array(fs.readFileSync(path)), { uri: path, maxIssues: 100 });
const issues = report.issues;
const messages = issues.messages.filter((m) => m.severity <= 1).map((m) => `${m.code} ${m.pointer}: ${m.message}`);
process.stdout.write(JSON.stringify({ errors: issues.numErrors, warnings: issues.numWarnings, infos: issues.numInfos, messages }));
