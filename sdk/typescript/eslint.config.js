// ESLint for the SDK (`npm run lint`, run by `make sdk-lint`): ESLint's and
// typescript-eslint's recommended rules, the type-aware ones included, over src/.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "test/", "eslint.config.js"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // An aborted wait rejects with the AbortSignal's reason (typed any), as fetch does.
      "@typescript-eslint/prefer-promise-reject-errors": ["error", { allowThrowingAny: true }],
    },
  },
);
