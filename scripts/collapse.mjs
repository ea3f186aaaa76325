#!/usr/bin/env node
// Entry point of the `collapse` CLI: registers tsx so that the TypeScript sources run without a build step.
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
