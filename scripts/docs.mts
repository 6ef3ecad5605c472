// Regenerates the config reference in docs/configuration.md from the schema.
import { readFileSync, writeFileSync } from 'node:fs';
import { withConfigReference } from '../src/core/config-doc';

const file = new URL('../docs/configuration.md', import.meta.url);
writeFileSync(file, withConfigReference(readFileSync(file, 'utf8')));
