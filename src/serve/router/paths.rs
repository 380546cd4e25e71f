//! Every path the server answers, in one place: [`Route::of`] names the
//! route of a path, and the route says which methods it takes, whether
//! anyone may ask without logging in, whether it is a long answer, and
//! which module answers it. The dispatcher (`serve::server`), the auth
//! gate and the video hooks all read paths through it, and the table test
//! below lists them all (SPEC.md, "HTTP API").

use super::request::Method;

/// A file under `/api/cameras/{camera}/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CameraFile<'a> {
    Recordings,
    ViewMp4,
    ExportTs,
    VodM3u8,
    LiveM3u8,
    InitMp4,
    SegmentM4s,
    LiveMp4,
    Mjpeg,
    SnapshotJpg,
    /// None of ours (404), though a long answer by its name.
    Other(&'a str),
}

impl<'a> CameraFile<'a> {
    const NAMED: [(&'static str, CameraFile<'static>); 10] = [
        ("recordings", CameraFile::Recordings),
        ("view.mp4", CameraFile::ViewMp4),
        ("export.ts", CameraFile::ExportTs),
        ("vod.m3u8", CameraFile::VodM3u8),
        ("live.m3u8", CameraFile::LiveM3u8),
        ("init.mp4", CameraFile::InitMp4),
        ("segment.m4s", CameraFile::SegmentM4s),
        ("live.mp4", CameraFile::LiveMp4),
        ("mjpeg", CameraFile::Mjpeg),
        ("snapshot.jpg", CameraFile::SnapshotJpg),
    ];

    fn of(name: &'a str) -> CameraFile<'a> {
        Self::NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(CameraFile::Other(name), |(_, f)| *f)
    }

    /// The last path segment.
    pub fn name(self) -> &'a str {
        match self {
            CameraFile::Other(name) => name,
            known => Self::NAMED
                .iter()
                .find(|(_, f)| *f == known)
                .map_or("", |(n, _)| n),
        }
    }
}

/// What a path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/`: the page.
    Page,
    /// `/{name}`: one of the page's files, or nothing.
    PageFile(&'a str),
    Login,
    Logout,
    Status,
    Metrics,
    Cameras,
    Camera(&'a str),
    Users,
    User(&'a str),
    CameraFile {
        camera: &'a str,
        file: CameraFile<'a>,
    },
    /// None of the above: 404, unless a hook of its own answers it.
    Other,
}

impl<'a> Route<'a> {
    /// The route of a request's decoded path segments.
    pub fn of(segments: &'a [String]) -> Route<'a> {
        let s: [Option<&'a str>; 5] = std::array::from_fn(|i| segments.get(i).map(String::as_str));
        match s {
            [Some(""), None, ..] => Route::Page,
            [Some("metrics"), None, ..] => Route::Metrics,
            [Some(name), None, ..] => Route::PageFile(name),
            [Some("api"), Some(what), None, ..] => match what {
                "login" => Route::Login,
                "logout" => Route::Logout,
                "status" => Route::Status,
                "cameras" => Route::Cameras,
                "users" => Route::Users,
                _ => Route::Other,
            },
            [Some("api"), Some("cameras"), Some(name), None, ..] => Route::Camera(name),
            [Some("api"), Some("users"), Some(name), None, ..] => Route::User(name),
            [Some("api"), Some("cameras"), Some(camera), Some(file), None] => Route::CameraFile {
                camera,
                file: CameraFile::of(file),
            },
            _ => Route::Other,
        }
    }

    /// The methods it accepts; anything else is 405 with `Allow`.
    pub fn methods(self) -> &'static [Method] {
        use Method::*;
        match self {
            Route::Login | Route::Logout => &[Post],
            Route::Cameras | Route::Users => &[Get, Head, Post],
            Route::Camera(_) | Route::User(_) => &[Get, Head, Put, Delete],
            _ => &[Get, Head],
        }
    }

    /// Whether anyone may ask, logged in or not: the page and its files,
    /// and logging in and out.
    pub fn is_public(self, method: Method) -> bool {
        match self {
            Route::Page | Route::Login | Route::Logout => true,
            Route::PageFile(name) => {
                matches!(method, Method::Get | Method::Head) && is_page_asset(name)
            }
            _ => false,
        }
    }

    /// Whether it is a long answer (video bytes for as long as the client
    /// reads): those hold a permit of `http.max_clients`, taken before any
    /// work so that a refused client costs nothing. Playlists and
    /// snapshots are short answers.
    pub fn is_long(self) -> bool {
        let Route::CameraFile { file, .. } = self else {
            return false;
        };
        let name = file.name();
        name == "mjpeg"
            || [".mp4", ".ts", ".m4s"]
                .iter()
                .any(|ext| name.ends_with(ext))
    }

    /// The module that answers it.
    pub fn answered_by(self) -> &'static str {
        match self {
            Route::Page | Route::PageFile(_) => "web",
            Route::Login | Route::Logout | Route::Users | Route::User(_) => "api::users",
            Route::Status | Route::Metrics => "api::status",
            Route::Cameras | Route::Camera(_) => "api::cameras",
            Route::CameraFile { file, .. } => match file {
                CameraFile::Recordings => "api::recordings",
                CameraFile::ViewMp4 => "view",
                CameraFile::ExportTs => "ts",
                CameraFile::VodM3u8
                | CameraFile::LiveM3u8
                | CameraFile::InitMp4
                | CameraFile::SegmentM4s => "hls",
                CameraFile::LiveMp4 => "live",
                CameraFile::Mjpeg | CameraFile::SnapshotJpg => "mjpeg",
                CameraFile::Other(_) => "none",
            },
            Route::Other => "none",
        }
    }
}

/// A static file of the page (`/app.js`, `/app.css`, `/favicon.svg`...):
/// one path segment with a known extension.
fn is_page_asset(name: &str) -> bool {
    [".js", ".css", ".svg", ".ico", ".png", ".webmanifest"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Method::*;

    fn route(path: &str) -> Route<'static> {
        let segments: Vec<String> = path
            .strip_prefix('/')
            .unwrap()
            .split('/')
            .map(str::to_owned)
            .collect();
        // Leaked: a test's handful of paths.
        Route::of(Box::leak(segments.into_boxed_slice()))
    }

    /// Path, route, methods, answered by, long, public.
    type Row = (
        &'static str,
        Route<'static>,
        &'static [Method],
        &'static str,
        bool,
        bool,
    );

    /// Every path of SPEC.md: its route, methods, module, long or short,
    /// public (to a GET) or not.
    #[test]
    fn every_path() {
        const GH: &[Method] = &[Get, Head];
        const GHP: &[Method] = &[Get, Head, Post];
        const GHPD: &[Method] = &[Get, Head, Put, Delete];
        const P: &[Method] = &[Post];
        #[rustfmt::skip]
        let table: &[Row] = &[
            // path, route, methods, answered by, long, public
            ("/", Route::Page, GH, "web", false, true),
            ("/app.js", Route::PageFile("app.js"), GH, "web", false, true),
            ("/app.css", Route::PageFile("app.css"), GH, "web", false, true),
            ("/favicon.svg", Route::PageFile("favicon.svg"), GH, "web", false, true),
            ("/index.html", Route::PageFile("index.html"), GH, "web", false, false),
            ("/metrics", Route::Metrics, GH, "api::status", false, false),
            ("/api/status", Route::Status, GH, "api::status", false, false),
            ("/api/login", Route::Login, P, "api::users", false, true),
            ("/api/logout", Route::Logout, P, "api::users", false, true),
            ("/api/users", Route::Users, GHP, "api::users", false, false),
            ("/api/users/ann", Route::User("ann"), GHPD, "api::users", false, false),
            ("/api/cameras", Route::Cameras, GHP, "api::cameras", false, false),
            ("/api/cameras/a", Route::Camera("a"), GHPD, "api::cameras", false, false),
            ("/api/cameras/a/recordings", cam("a", CameraFile::Recordings), GH, "api::recordings", false, false),
            ("/api/cameras/a/view.mp4", cam("a", CameraFile::ViewMp4), GH, "view", true, false),
            ("/api/cameras/a/export.ts", cam("a", CameraFile::ExportTs), GH, "ts", true, false),
            ("/api/cameras/a/vod.m3u8", cam("a", CameraFile::VodM3u8), GH, "hls", false, false),
            ("/api/cameras/a/live.m3u8", cam("a", CameraFile::LiveM3u8), GH, "hls", false, false),
            ("/api/cameras/a/init.mp4", cam("a", CameraFile::InitMp4), GH, "hls", true, false),
            ("/api/cameras/a/segment.m4s", cam("a", CameraFile::SegmentM4s), GH, "hls", true, false),
            ("/api/cameras/a/live.mp4", cam("a", CameraFile::LiveMp4), GH, "live", true, false),
            ("/api/cameras/a/mjpeg", cam("a", CameraFile::Mjpeg), GH, "mjpeg", true, false),
            ("/api/cameras/a/snapshot.jpg", cam("a", CameraFile::SnapshotJpg), GH, "mjpeg", false, false),
            // Not ours: 404 (a video name still takes a permit first).
            ("/api/cameras/a/x.mp4", cam("a", CameraFile::Other("x.mp4")), GH, "none", true, false),
            ("/api/cameras/a/x", cam("a", CameraFile::Other("x")), GH, "none", false, false),
            ("/api", Route::PageFile("api"), GH, "web", false, false),
            ("/api/nope", Route::Other, GH, "none", false, false),
            ("/api/cameras/a/view.mp4/x", Route::Other, GH, "none", false, false),
            ("/x/y", Route::Other, GH, "none", false, false),
        ];
        for &(path, want, methods, by, long, public) in table {
            let got = route(path);
            assert_eq!(got, want, "{path}");
            assert_eq!(got.methods(), methods, "{path}");
            assert_eq!(got.answered_by(), by, "{path}");
            assert_eq!(got.is_long(), long, "{path}");
            assert_eq!(got.is_public(Get), public, "{path}");
        }
        // Every file a camera has is in the table.
        for (name, file) in CameraFile::NAMED {
            assert_eq!(file.name(), name);
            let path = format!("/api/cameras/a/{name}");
            assert!(table.iter().any(|t| t.0 == path), "{path} missing");
        }
    }

    fn cam(camera: &'static str, file: CameraFile<'static>) -> Route<'static> {
        Route::CameraFile { camera, file }
    }

    #[test]
    fn page_files_are_public_only_to_read() {
        let r = route("/app.js");
        assert!(r.is_public(Get) && r.is_public(Head));
        assert!(!r.is_public(Post));
        let r = route("/");
        assert!(r.is_public(Post));
    }
}
