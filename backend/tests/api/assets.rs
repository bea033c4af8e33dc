use crate::fake::FakeTalos;
use crate::helpers::spawn_app;

#[tokio::test]
async fn app_routes_fall_back_to_the_index_page() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    let index = app.get("/").await;
    assert_eq!(index.status(), 200);
    let index_body = index.text().await.expect("body");

    let deep = app.get("/clusters/prod/recovery").await;

    assert_eq!(deep.status(), 200);
    assert!(
        deep.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let csp = deep.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert_eq!(deep.text().await.expect("body"), index_body);
    assert!(index_body.contains("<html"), "{index_body}");
}

#[tokio::test]
async fn missing_files_are_404_not_the_index_page() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;

    let response = app.get("/no-such-file-1234.js").await;

    assert_eq!(response.status(), 404);
}
