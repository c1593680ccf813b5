// Build of the admin console. It is served by the door (nginx) under /ui/, so every asset URL
// starts with /ui/ and client-side routes are answered with index.html there.
// ARCHIVE_CONSOLE_OUT names the output folder (scripts/install-console: .cache/console/dist).
import { fileURLToPath, URL } from 'node:url'
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

export default defineConfig({
  base: '/ui/',
  plugins: [vue()],
  resolve: {
    alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) },
  },
  define: {
    // vue-i18n's bundler build asks for these: Composition API only, no devtools in production.
    __VUE_I18N_FULL_INSTALL__: true,
    __VUE_I18N_LEGACY_API__: false,
    __INTLIFY_PROD_DEVTOOLS__: false,
  },
  build: {
    outDir: process.env.ARCHIVE_CONSOLE_OUT || 'dist',
    emptyOutDir: true,
    // Libraries are split out so that pages can change without invalidating them in browsers'
    // caches (assets carry content hashes, the door may cache /ui/assets/ for good).
    rollupOptions: {
      output: {
        // A function, not a list of packages: a listed package is kept whole, unused parts too.
        manualChunks(id: string) {
          if (id.includes('/node_modules/element-plus/') || id.includes('/node_modules/@element-plus/')) {
            return 'element-plus'
          }
          if (id.includes('/node_modules/')) return 'vendor'
          return undefined
        },
      },
    },
  },
  server: {
    // `npm run dev`: the API of a running archive (scripts/serve) behind the dev server.
    proxy: { '/api': process.env.ARCHIVE_URL || 'http://127.0.0.1:8042' },
  },
})
