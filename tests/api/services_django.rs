//! A Django project with pytest-django and a Postgres service, as
//! docs/services.md shows it: its settings read the database from `[env]`,
//! pytest-django creates its test database on the service, and the tests
//! pass with the counts pytest gives (3 passed).

use std::time::Duration;

use crate::helpers::{id, TestApp};

const SETTINGS: &str = "import os

SECRET_KEY = 'only-for-tests'
USE_TZ = True
INSTALLED_APPS = ['django.contrib.contenttypes', 'django.contrib.auth', 'app.notes']
DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'
DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.postgresql',
        'HOST': os.environ['DB_DATABASE_HOST'],
        'PORT': os.environ.get('DB_DATABASE_PORT', '5432'),
        'NAME': os.environ['DB_DATABASE_NAME'],
        'USER': os.environ['DB_DATABASE_USER'],
        'PASSWORD': os.environ['DB_DATABASE_PASSWORD'],
    }
}
";

const MODELS: &str = "from django.db import models


class Note(models.Model):
    author = models.CharField(max_length=40)
    body = models.TextField()
";

const TESTS: &str = "import pytest
from django.contrib.auth.models import User
from django.db import connection

from app.notes.models import Note


@pytest.mark.django_db
def test_the_test_database_is_on_the_postgres_service():
    assert connection.vendor == 'postgresql'
    assert connection.settings_dict['HOST'] == 'db'
    assert connection.settings_dict['NAME'] == 'test_app'


@pytest.mark.django_db
def test_notes_are_saved_and_filtered():
    Note.objects.create(author='ann', body='one')
    Note.objects.create(author='bob', body='two')
    Note.objects.create(author='ann', body='three')
    assert [n.body for n in Note.objects.filter(author='ann').order_by('id')] == ['one', 'three']


@pytest.mark.django_db
def test_users_come_from_contrib_auth():
    User.objects.create_user('ann', password='pw')
    assert User.objects.get(username='ann').check_password('pw')
";

const PROJECT: &[(&str, &str)] = &[
    (
        "django_app/test-executor.toml",
        "[env]\nDJANGO_SETTINGS_MODULE = \"app.settings\"\nDB_DATABASE_HOST = \"db\"\n\
         DB_DATABASE_NAME = \"app\"\nDB_DATABASE_USER = \"app\"\n\
         DB_DATABASE_PASSWORD = \"not-a-secret\"\n\n\
         [[services]]\nname = \"db\"\nimage = \"postgres\"\n\
         env = { POSTGRES_USER = \"app\", POSTGRES_PASSWORD = \"not-a-secret\", POSTGRES_DB = \"app\" }\n\
         ready = \"tcp:5432\"\n",
    ),
    (
        "django_app/requirements-test.txt",
        "Django==5.1.4\npytest-django==4.9.0\npsycopg[binary]==3.2.3\n",
    ),
    ("django_app/pytest.ini", "[pytest]\n"),
    ("django_app/app/__init__.py", ""),
    ("django_app/app/settings.py", SETTINGS),
    ("django_app/app/notes/__init__.py", ""),
    ("django_app/app/notes/models.py", MODELS),
    ("django_app/tests/test_notes.py", TESTS),
];

#[tokio::test]
async fn a_django_project_with_pytest_django_passes_on_its_postgres_service() {
    let app = TestApp::spawn_with(PROJECT, |_| {}).await;
    let run = app.create_run(1, &["django_app/tests/test_notes.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(400)).await;
    let logs = app.log_text(id(&run)).await.join("\n");
    assert_eq!(run["status"], "success", "{run}\n{logs}");
    assert_eq!(run["summary"]["passed"], 3, "{run}");
    assert_eq!(run["summary"]["failed"], 0, "{run}");
}
