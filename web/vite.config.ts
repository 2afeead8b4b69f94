import { defineConfig, loadEnv } from "vite";

// The gateway serves dist/ at "/", so asset URLs are relative ("./assets/...") and the bundle works
// under any path. `npm run dev` proxies /api (and the event stream) to a running gateway, found at
// GATEWAY_URL (default http://127.0.0.1:8000).
export default defineConfig(({ mode }) => {
  const gateway = loadEnv(mode, ".", "").GATEWAY_URL || "http://127.0.0.1:8000";
  return {
    base: "./",
    // Preact's automatic JSX runtime through esbuild: no Babel, no framework plugin needed.
    esbuild: { jsx: "automatic", jsxImportSource: "preact" },
    build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
    server: { proxy: { "/api": { target: gateway } } },
  };
});
