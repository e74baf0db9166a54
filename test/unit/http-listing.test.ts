// Reading directory listing pages: which links count as children, and which sizes and dates are taken as exact.
import { describe, expect, it } from "vitest";
import { parseListing } from "../../src/sources/http-listing.js";

const page = new URL("http://h/pub/av/");

describe("parseListing", () => {
  it("reads nginx lines: exact sizes, dates, folders by their slash", () => {
    const html = `<pre><a href="../">../</a>
<a href="sub/">sub/</a>                                               28-Nov-2026 10:00                   -
<a href="daily%20db.cvd">daily db.cvd</a>                                       28-Nov-2026 10:05               61234
<a href="2026.bin">2026.bin</a>                                           01-Jan-2026 00:00                  12
</pre>`;
    expect(parseListing(html, page)).toEqual([
      { name: "sub", dir: true, mtimeMs: Date.UTC(2026, 10, 28, 10, 0) },
      { name: "daily db.cvd", dir: false, size: 61234, mtimeMs: Date.UTC(2026, 10, 28, 10, 5) },
      // A name made of digits is no size: the link's text is left out before sizes are read.
      { name: "2026.bin", dir: false, size: 12, mtimeMs: Date.UTC(2026, 0, 1) },
    ]);
  });

  it("takes no size from rounded figures (Apache, lighttpd), but exact small ones", () => {
    const html = `<table><tr><th><a href="?C=N;O=D">Name</a></th></tr>
<tr><td><a href="/pub/">Parent Directory</a></td></tr>
<tr><td><a href="big.bin">big.bin</a></td><td align="right">2026-11-28 10:00  </td><td align="right">1.2K</td></tr>
<tr><td><a href="small.txt">small.txt</a></td><td align="right">2026-11-28 10:00  </td><td align="right">512</td></tr></table>`;
    expect(parseListing(html, page)).toEqual([
      { name: "big.bin", dir: false, mtimeMs: Date.UTC(2026, 10, 28, 10, 0) },
      { name: "small.txt", dir: false, size: 512, mtimeMs: Date.UTC(2026, 10, 28, 10, 0) },
    ]);
  });

  it("reads IIS rows, where date and size come before an absolute link", () => {
    const html = `<pre><A HREF="/pub/">[To Parent Directory]</A><br><br>Friday, November 27, 2026  1:05 PM         4096 <A HREF="/pub/av/a.dat">a.dat</A><br>Friday, November 27, 2026 12:00 AM        &lt;dir&gt; <A HREF="/pub/av/x/">x</A><br></pre>`;
    expect(parseListing(html, page)).toEqual([
      { name: "a.dat", dir: false, size: 4096, mtimeMs: Date.UTC(2026, 10, 27, 13, 5) },
      { name: "x", dir: true, mtimeMs: Date.UTC(2026, 10, 27, 0, 0) },
    ]);
  });

  it("reads Caddy's exact size and datetime attributes from a row spread over lines", () => {
    const html = `<table><tr class="file">
  <td><a href="./f%23.bin">
    <span class="name">f#.bin</span></a></td>
  <td data-size="70000" data-order="70000"><div>68KB</div></td>
  <td><time datetime="2026-11-28T10:00:07Z">Sat, 28 Nov 2026</time></td>
</tr></table>`;
    expect(parseListing(html, page)).toEqual([{ name: "f#.bin", dir: false, size: 70000, mtimeMs: Date.UTC(2026, 10, 28, 10, 0, 7) }]);
  });

  it("ignores other hosts, parents, grandchildren, queries, fragments, encoded separators and bad escapes", () => {
    const links = ["http://evil/x", "//evil/y", "/etc/passwd", "../up.txt", "a/b.txt", "?C=M", "#top", "a%2Fb", "bad%zz", "%2e%2e/x", "ok.txt"];
    const html = links.map((l) => `<a href="${l}">${l}</a>`).join("\n");
    expect(parseListing(html, page).map((l) => l.name)).toEqual(["ok.txt"]);
  });
});
