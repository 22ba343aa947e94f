// Lint boundaries the house style relies on: no cycles, processors never import the API, pure reducers import no I/O.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

const ioModules = ['kafkajs', 'pg', 'ioredis', 'mqtt', 'express', 'node:net', 'node:http', 'node:fs'];

export default tseslint.config(
  { ignores: ['node_modules/**', '.data/**', '**/dist/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })] },
    languageOptions: { parserOptions: { projectService: false } },
    rules: {
      'import-x/no-cycle': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    files: ['processors/**/*.ts', 'ingest/**/*.ts', 'lib/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/api/**'], message: 'processors/ingest/lib must not import api/' }] },
      ],
    },
  },
  {
    files: ['processors/**/reduce.ts', 'processors/**/reduce-*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: ioModules.map((name) => ({ name, message: 'reducers are pure: no I/O imports' })) },
      ],
    },
  },
);
