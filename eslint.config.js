// Lint: typescript-eslint's type-aware rules over src/ (promises that float or are misused,
// values of type any that leak), plus the recommended JavaScript rules.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config({ ignores: ['dist/', 'node_modules/', 'completions/', 'coverage/'] }, js.configs.recommended, ...tseslint.configs.recommendedTypeChecked, {
  files: ['src/**/*.ts'],
  languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
  rules: {
    // a command's run() is async by contract (CommandModule), whether or not this one awaits
    '@typescript-eslint/require-await': 'off',
    // `_x` names a parameter a contract passes but this implementation does not need
    '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
  },
});
