/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Django serves dist/index.html for every non-API path and dist/assets/* under /assets/.
// In development, `npm run dev` proxies the API to a Django server on :8000.
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: { outDir: "dist", sourcemap: true, chunkSizeWarningLimit: 1500 },
  server: {
    proxy: {
      "/api": { target: process.env.TESSERA_API ?? "http://127.0.0.1:8000", changeOrigin: false },
      "/media": { target: process.env.TESSERA_API ?? "http://127.0.0.1:8000" },
      "/ws": { target: process.env.TESSERA_API ?? "http://127.0.0.1:8000", ws: true },
    },
  },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});
