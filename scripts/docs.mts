// Regenerates the README's config reference from the schema.
import { readFileSync, writeFileSync } from 'node:fs';
import { withConfigReference } from '../src/core/config-doc';

const file = new URL('../README.md', import.meta.url);
writeFileSync(file, withConfigReference(readFileSync(file, 'utf8')));
