//! The provider screens' service: the same operations the REST API uses,
//! for the caller of the request.

use app::error::AppError;
use app::providers::{
    Discovered, ProviderDeleted, ProviderInput, ProviderTemplate, ProviderView, ProvidersService,
};
use leptos::server_fn::http_export::request::Parts;

use crate::http::caller::Authenticated;
use crate::startup::Instance;

/// The provider screens' data and actions: the same operations the REST API uses.
pub struct ProvidersFacade {
    instance: Instance,
}

impl ProvidersFacade {
    /// Wraps the instance.
    pub fn new(instance: Instance) -> Self {
        Self { instance }
    }
}

#[async_trait::async_trait]
impl ProvidersService for ProvidersFacade {
    async fn list(&self, parts: &Parts) -> Result<Vec<ProviderView>, AppError> {
        let Authenticated { caller, .. } = Authenticated::from_parts(parts)?;
        self.instance.providers.list(&caller).await
    }

    async fn get(&self, parts: &Parts, id: String) -> Result<ProviderView, AppError> {
        let Authenticated { caller, .. } = Authenticated::from_parts(parts)?;
        self.instance.providers.get(&caller, &id).await
    }

    async fn create(&self, parts: &Parts, input: ProviderInput) -> Result<ProviderView, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        self.instance.providers.create(&caller, input, addr).await
    }

    async fn promote_secret(&self, parts: &Parts, id: String) -> Result<ProviderView, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        self.instance
            .providers
            .promote_secret(&caller, &id, addr)
            .await
    }

    async fn update(
        &self,
        parts: &Parts,
        id: String,
        input: ProviderInput,
    ) -> Result<ProviderView, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        self.instance
            .providers
            .update(&caller, &id, input, addr)
            .await
    }

    async fn delete(
        &self,
        parts: &Parts,
        id: String,
        force: bool,
    ) -> Result<ProviderDeleted, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        let (deleted_tokens, _) = self
            .instance
            .tokens
            .delete_provider(&caller, &id, force, addr)
            .await?;
        Ok(ProviderDeleted { id, deleted_tokens })
    }

    async fn discover(&self, parts: &Parts, issuer: String) -> Result<Discovered, AppError> {
        let Authenticated { caller, .. } = Authenticated::from_parts(parts)?;
        self.instance.providers.discover(&caller, &issuer).await
    }

    async fn templates(&self, parts: &Parts) -> Result<Vec<ProviderTemplate>, AppError> {
        Authenticated::from_parts(parts)?;
        Ok(crate::providers::templates::all().to_vec())
    }
}
