//! What dependency images leave behind: old images pruned but never one a
//! container uses, no untagged image after a rebuild, builders of a dead
//! process removed.

use super::*;

#[tokio::test]
async fn old_images_are_pruned_but_never_one_a_container_uses() {
    let mut fixture = DepsFixture::new("pruned").await;
    fixture.settings.deps_keep_images = 1;
    fixture.write("requirements.txt", "iniconfig==2.0.0\n");
    let old = fixture.ensure().await.unwrap();
    let holder = format!("te-test-holder-{}", fixture.name);
    let created = Command::new("docker")
        .args(["create", "--name", &holder, &old.image, "true"])
        .output()
        .unwrap();
    assert!(created.status.success());

    fixture.write("requirements.txt", "iniconfig==1.1.1\n");
    let new = fixture.ensure().await.unwrap();
    assert!(new.built);
    assert!(
        fixture.engine.image_exists(&old.image).await.unwrap(),
        "an image in use was removed"
    );

    let removed = Command::new("docker")
        .args(["rm", &holder])
        .output()
        .unwrap();
    assert!(removed.status.success());
    let pruned = dependencies::prune(&fixture.db, &fixture.engine, &fixture.name, 1)
        .await
        .unwrap();
    assert_eq!(pruned, std::slice::from_ref(&old.image));
    assert!(!fixture.engine.image_exists(&old.image).await.unwrap());
    assert!(fixture.engine.image_exists(&new.image).await.unwrap());
    let rows = dependencies::store::for_project(&fixture.db, &fixture.name)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].image, new.image);
}

/// ann's and bob's trees share a name (a tree's is its folder's): ann's
/// builds prune ann's images, never bob's.
#[tokio::test]
async fn one_persons_tree_builds_never_prune_another_persons_image_of_the_same_name() {
    let mut fixture = DepsFixture::new("grouped").await;
    fixture.settings.deps_keep_images = 1;
    let tree = |user: &str, id: char| {
        fixture
            .project()
            .of_tree(&id.to_string().repeat(64))
            .built_for(user)
    };
    let ensure = |project: ProjectSource| {
        let fixture = &fixture;
        async move {
            dependencies::ensure_image(
                &fixture.db,
                &fixture.engine,
                &fixture.settings,
                &fixture.base,
                &project,
            )
            .await
            .unwrap()
        }
    };
    fixture.write("requirements.txt", "iniconfig==1.1.1\n");
    let bobs = ensure(tree("bob", 'b')).await;
    fixture.write("requirements.txt", "iniconfig==2.0.0\n");
    let anns_first = ensure(tree("ann", 'a')).await;
    fixture.write("requirements.txt", "iniconfig==2.0.0 # again\n");
    let anns_second = ensure(tree("ann", 'c')).await;
    assert!(bobs.built && anns_first.built && anns_second.built);
    let exists = |image: String| {
        let engine = &fixture.engine;
        async move { engine.image_exists(&image).await.unwrap() }
    };
    assert!(
        exists(bobs.image.clone()).await,
        "bob's image was pruned by ann's build"
    );
    assert!(
        !exists(anns_first.image.clone()).await,
        "ann's older image was not pruned"
    );
    assert!(exists(anns_second.image.clone()).await);
}

#[tokio::test]
async fn a_rebuild_while_a_container_holds_the_image_leaves_no_untagged_image_behind() {
    let fixture = DepsFixture::new("rebuilt").await;
    fixture.write("requirements.txt", "iniconfig==2.0.0\n");
    let old = fixture.ensure().await.unwrap();
    let old_id = image_id(&old.image);
    let holder = format!("te-test-holder-{}", fixture.name);
    let created = Command::new("docker")
        .args(["create", "--name", &holder, &old.image, "true"])
        .output()
        .unwrap();
    assert!(created.status.success());

    // Same inputs, same key and tag: the new image takes the tag, and the
    // old one (in use, so not removed) is left untagged.
    assert!(
        dependencies::rebuild(&fixture.db, &fixture.engine, old.key.as_deref().unwrap())
            .await
            .unwrap()
    );
    let new = fixture.ensure().await.unwrap();
    assert!(new.built);
    assert_eq!(new.image, old.image);
    assert_ne!(image_id(&new.image), old_id, "the rebuild made a new image");
    assert!(image_id_exists(&old_id), "an image in use was removed");

    let removed = Command::new("docker")
        .args(["rm", &holder])
        .output()
        .unwrap();
    assert!(removed.status.success());
    let pruned = dependencies::prune(&fixture.db, &fixture.engine, &fixture.name, 3)
        .await
        .unwrap();
    assert_eq!(pruned, vec![old_id.clone()]);
    assert!(
        !image_id_exists(&old_id),
        "the untagged image is still there"
    );
    assert!(fixture.engine.image_exists(&new.image).await.unwrap());
}

fn image_id(image: &str) -> String {
    let out = Command::new("docker")
        .args(["image", "inspect", "-f", "{{.Id}}", image])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn image_id_exists(id: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", id])
        .output()
        .unwrap()
        .status
        .success()
}

#[tokio::test]
async fn builders_left_by_a_dead_process_are_removed_and_others_kept() {
    let fixture = DepsFixture::new("orphans").await;
    let database: String = sqlx::query_scalar("select current_database()::text")
        .fetch_one(&fixture.db)
        .await
        .unwrap();
    let create = |name: &str, db: &str| {
        let key = format!("{:064x}", rand::random::<u128>());
        let out = Command::new("docker")
            .args(["create", "--name", name])
            .args(["--label", &format!("{}={key}", dependencies::LABEL_KEY)])
            .args(["--label", &format!("{}={db}", dependencies::LABEL_DATABASE)])
            .args([fixture.base.as_str(), "true"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    let orphan = format!("te-depbuild-test-orphan-{}", fixture.name);
    let elsewhere = format!("te-depbuild-test-elsewhere-{}", fixture.name);
    let not_a_builder = format!("te-test-not-a-builder-{}", fixture.name);
    create(&orphan, &database);
    create(&elsewhere, "another_installation");
    // A container of a dependency image carries the image's labels.
    create(&not_a_builder, &database);
    let exists = |name: &str| {
        Command::new("docker")
            .args(["inspect", name])
            .output()
            .unwrap()
            .status
            .success()
    };
    let removed = dependencies::remove_orphan_builders(&fixture.db, &fixture.engine)
        .await
        .unwrap();
    assert!(removed >= 1);
    assert!(!exists(&orphan), "the orphan builder is still there");
    assert!(
        exists(&elsewhere),
        "another installation's builder was removed"
    );
    assert!(
        exists(&not_a_builder),
        "a container that is no builder was removed"
    );
    let _ = Command::new("docker")
        .args(["rm", "-f", &elsewhere, &not_a_builder])
        .output();
}
