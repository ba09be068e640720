import type { Metadata, Viewport } from "next";
import { Nav, StreamerBar } from "@/components/nav";
import { LiveProvider } from "@/lib/live";
import { SessionProvider } from "@/lib/session";
import "./globals.css";

export const metadata: Metadata = { title: "Mirage", description: "Live video, transformed" };
export const viewport: Viewport = { width: "device-width", initialScale: 1 };

// The live state (lib/live.tsx: the camera ingest, the dashboard answer)
// sits above the pages, so moving between them keeps the stream going.
export default function RootLayout({ children }: { children: React.ReactNode }) {
  return (
    <html lang="en">
      <body>
        <SessionProvider>
          <LiveProvider>
            <Nav />
            <StreamerBar />
            <main>{children}</main>
          </LiveProvider>
        </SessionProvider>
      </body>
    </html>
  );
}
